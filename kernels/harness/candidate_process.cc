#include "kernels/harness/candidate_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <grp.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kernels/harness/subprocess.h"

extern char** environ;

namespace ratchet::kernels {
namespace {

namespace ch = channel;

constexpr size_t kCanary = 256;  // bytes of canary before and after every tensor
constexpr size_t kAlign = 64;
constexpr unsigned char kCanaryByte = 0xA5;

size_t AlignUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

// The clock the kernel stamps datagrams with (SO_TIMESTAMPNS).
int64_t RealtimeNs() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Reads every datagram waiting on `fd`; the kernel's arrival stamp of the
// first that answers `seq` at or after `t0` goes to *stamp (if still 0).
// Others are stale or claims the candidate made up, and dropped.
void ReadAnswers(int fd, uint32_t seq, int64_t t0, int64_t* stamp) {
  for (;;) {
    uint32_t value = 0;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec)) + 64];
    iovec iov{&value, sizeof(value)};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
    if (n < 0) return;
    if (n != sizeof(value) || value != seq || *stamp != 0) continue;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
      timespec ts{};
      std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      const int64_t at = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
      if (at >= t0) *stamp = at;
    }
  }
}

std::string StatusText(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sig == SIGSEGV   ? "SIGSEGV"
                       : sig == SIGBUS  ? "SIGBUS"
                       : sig == SIGFPE  ? "SIGFPE"
                       : sig == SIGILL  ? "SIGILL"
                       : sig == SIGABRT ? "SIGABRT"
                       : sig == SIGKILL ? "SIGKILL"
                                        : nullptr;
    return name ? absl::StrCat("killed by ", name) : absl::StrCat("killed by signal ", sig);
  }
  return absl::StrCat("exited with status ", WEXITSTATUS(status),
                      " (exit() or a return from main inside the candidate's code)");
}

// Children of this process, from every thread's list.
std::vector<pid_t> Children() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string text =
        ReadFileOrEmpty(absl::StrCat("/proc/self/task/", e->d_name, "/children"));
    size_t i = 0;
    while (i < text.size()) {
      const size_t j = text.find(' ', i);
      const std::string tok = text.substr(i, j == std::string::npos ? std::string::npos : j - i);
      if (!tok.empty()) out.push_back(static_cast<pid_t>(std::atoi(tok.c_str())));
      if (j == std::string::npos) break;
      i = j + 1;
    }
  }
  closedir(d);
  return out;
}

}  // namespace

void BecomeTrustedParent() {
  prctl(PR_SET_DUMPABLE, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  // Every call copies whole tensors into buffers of the same sizes: keep
  // freed ones in the heap rather than handing them back to the kernel, so
  // that the next call's copy does not fault in fresh pages (most of the
  // harness's time on large tensors, measured).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, -1);
}

void ScrubEnvironment() {
  static const char* kKeep[] = {"PATH=", "LANG=", "LC_ALL=", "LC_CTYPE=", "HOME=", "TMPDIR=",
                                "XDG_CACHE_HOME=", "LD_LIBRARY_PATH=", "CUDA_HOME=",
                                "CUDA_VISIBLE_DEVICES=", "CUDA_PATH=", "NVIDIA_",
                                "NCCL_", "RATCHET_PYTHON=", "RATCHET_FLUSH_MIB=",
                                "RATCHET_TB_", "RATCHET_KEEP_SCRATCH=", "RATCHET_NVCC=",
                                "TORCHINDUCTOR_", "TRITON_CACHE_DIR="};
  std::vector<std::string> drop;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    bool keep = false;
    for (const char* k : kKeep) keep = keep || absl::StartsWith(kv, k);
    if (!keep) drop.push_back(kv.substr(0, kv.find('=')));
  }
  for (const std::string& k : drop) unsetenv(k.c_str());
}

absl::StatusOr<std::unique_ptr<CandidateProcess>> CandidateProcess::Start(
    const std::string& exe, const std::string& library, size_t arena_bytes,
    const std::string& workdir, const std::string& log) {
  return Start(exe, library, arena_bytes, workdir, log, nullptr);
}

absl::StatusOr<std::unique_ptr<CandidateProcess>> CandidateProcess::Start(
    const std::string& exe, const std::string& library, size_t arena_bytes,
    const std::string& workdir, const std::string& log,
    const std::function<void(channel::ControlBlock*)>& prepare) {
  return Start(exe, {}, library, arena_bytes, workdir, log, prepare);
}

absl::StatusOr<std::unique_ptr<CandidateProcess>> CandidateProcess::Start(
    const std::string& exe, const std::vector<std::string>& args, const std::string& library,
    size_t arena_bytes, const std::string& workdir, const std::string& log,
    const std::function<void(channel::ControlBlock*)>& prepare) {
  std::unique_ptr<CandidateProcess> p(new CandidateProcess());
  p->log_ = log;
  p->arena_bytes_ = AlignUp(arena_bytes, 4096);
  p->map_bytes_ = ch::kControlBytes + p->arena_bytes_;
  const int mfd = memfd_create("ratchet-arena", MFD_CLOEXEC);
  if (mfd < 0) return absl::InternalError(absl::StrCat("memfd_create: ", strerror(errno)));
  if (ftruncate(mfd, static_cast<off_t>(p->map_bytes_)) != 0) {
    close(mfd);
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot size a shared arena of ", p->map_bytes_, " bytes"));
  }
  void* base = mmap(nullptr, p->map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, mfd, 0);
  if (base == MAP_FAILED) {
    close(mfd);
    return absl::ResourceExhaustedError("cannot map the shared arena");
  }
  p->cb_ = new (base) ch::ControlBlock();
  p->cb_->magic = ch::kMagic;
  p->cb_->arena_bytes = p->arena_bytes_;
  p->arena_ = static_cast<char*>(base) + ch::kControlBytes;
  if (prepare) prepare(p->cb_);
  int answer[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, answer) != 0) {
    close(mfd);
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  const int on = 1;
  setsockopt(answer[0], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
  p->answer_fd_ = answer[0];
  const int answer_fd = answer[1];
  const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int lib_fd = open(library.c_str(), O_RDONLY | O_CLOEXEC);
  if (lib_fd < 0) {
    if (log_fd >= 0) close(log_fd);
    close(answer_fd);
    close(mfd);
    return absl::InternalError(absl::StrCat("cannot open ", library, ": ", strerror(errno)));
  }
  // Root hands the candidate process to nobody, with a folder of its own.
  p->as_nobody_ = geteuid() == 0 && chown(workdir.c_str(), ch::kNobody, ch::kNobody) == 0;
  // Everything the child needs is prepared here: after fork only
  // async-signal-safe calls.
  const std::string home = "HOME=" + workdir, tmp = "TMPDIR=" + workdir;
  std::vector<std::string> env_text = {home, tmp};
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "HOME=") && !absl::StartsWith(*e, "TMPDIR=") &&
        !absl::StartsWith(*e, "XDG_CACHE_HOME="))
      env_text.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (std::string& s : env_text) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe_copy = exe;
  const bool as_nobody = p->as_nobody_;
  // Opened here, executed by descriptor: nobody may not be able to reach
  // the build folder by name (a checkout under /root, mode 0700).
  const int exe_fd = open(exe.c_str(), O_RDONLY | O_CLOEXEC);
  if (exe_fd < 0) {
    if (log_fd >= 0) close(log_fd);
    close(answer_fd);
    close(lib_fd);
    close(mfd);
    return absl::InternalError(absl::StrCat("cannot open ", exe, ": ", strerror(errno)));
  }
  std::vector<std::string> arg_text = {exe_copy};
  arg_text.insert(arg_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : arg_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t harness = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    if (log_fd >= 0) close(log_fd);
    close(answer_fd);
    close(exe_fd);
    close(lib_fd);
    close(mfd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    // Out of the way of 0..3 first, whatever numbers these came with.
    const int mem = fcntl(mfd, F_DUPFD_CLOEXEC, 64);
    const int lg = log_fd >= 0 ? fcntl(log_fd, F_DUPFD_CLOEXEC, 64) : -1;
    const int lib = fcntl(lib_fd, F_DUPFD_CLOEXEC, 64);
    const int self = fcntl(exe_fd, F_DUPFD_CLOEXEC, 64);
    const int ans = fcntl(answer_fd, F_DUPFD_CLOEXEC, 64);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) dup2(null_fd, 0);
    if (lg >= 0) {
      dup2(lg, 1);
      dup2(lg, 2);
    }
    dup2(mem, ch::kMemoryFd);  // the copies do not close on exec
    dup2(lib, ch::kLibraryFd);
    dup2(ans, ch::kAnswerFd);
    const int exe_at = ch::kAnswerFd + 1;
    dup2(self, exe_at);
    fcntl(exe_at, F_SETFD, FD_CLOEXEC);  // an ELF file needs no descriptor once running
    for (int fd = exe_at + 1; fd < 65536; ++fd) close(fd);
    if (chdir(workdir.c_str()) != 0) _exit(126);
    setpgid(0, 0);
    if (as_nobody) {
      // Without CAP_SETUID (a sandbox that dropped it) root is already
      // powerless over other processes; then this fails and changes nothing.
      if (setgroups(0, nullptr) != 0 || setgid(ch::kNobody) != 0 || setuid(ch::kNobody) != 0)
        _exit(125);
    }
    // Dies with the harness (set after setuid, which clears it), and the
    // harness is still there: ratchet-candidate takes its parent then for
    // the harness (under bwrap the harness is PID 1, so "reparented to 1"
    // cannot tell it is gone).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != harness) _exit(124);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    fexecve(exe_at, argv.data(), envp.data());
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  close(answer_fd);
  close(exe_fd);
  close(lib_fd);
  close(mfd);
  p->pid_ = pid;
  return p;
}

CandidateProcess::~CandidateProcess() {
  KillAll();
  if (cb_ != nullptr) munmap(cb_, map_bytes_);
  if (answer_fd_ >= 0) close(answer_fd_);
}

std::string CandidateProcess::LogTail() const { return Tail(ReadFileOrEmpty(log_), 2048); }

CandidateProcess::CallEnd CandidateProcess::Send(uint32_t op) {
  CallEnd end;
  if (exited_) {
    end.how = StatusText(status_);
    return end;
  }
  int64_t stamp = 0;  // when the kernel took this request's answer datagram
  ReadAnswers(answer_fd_, 0, 0, &stamp);  // drop what is left from earlier
  stamp = 0;
  cb_->op = op;
  const uint32_t seq = ++seq_;
  const int64_t t0 = RealtimeNs();
  cb_->request.store(seq, std::memory_order_release);
  ch::Wake(&cb_->request);
  // Wait for this request's answer; anything else in `done` is a claim the
  // candidate wrote, and it cannot end a call early except by answering.
  // A short spin catches short calls; then this process sleeps until the
  // answer's datagram arrives, leaving every core to the candidate's
  // threads (a spinning harness made a 2-thread call on 2 busy cores read
  // 20x slower), and takes the kernel's stamp of it for the call's end.
  for (;;) {
    if (cb_->done.load(std::memory_order_acquire) == seq) break;
    const int64_t t = RealtimeNs();
    if (t < t0 + kSpinNs) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    pollfd pfd{answer_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 20) > 0) {
      ReadAnswers(answer_fd_, seq, t0, &stamp);
      continue;
    }
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      status_ = st;
      end.how = StatusText(status_);
      return end;
    }
  }
  const int64_t seen_at = RealtimeNs();
  ReadAnswers(answer_fd_, seq, t0, &stamp);
  if (stamp == 0) {
    // `done` is bumped just before the datagram is sent: give an honest
    // answer's datagram a moment (untimed) to arrive.
    pollfd pfd{answer_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 1) > 0) ReadAnswers(answer_fd_, seq, t0, &stamp);
  }
  // The stamp, unless this process woke later than its own wake-up takes:
  // a candidate that answers early and keeps the cores busy to finish its
  // outputs before they are read gains nothing then.
  int64_t t1 = seen_at;
  if (stamp > 0 && seen_at - stamp <= wake_slack_ns_) t1 = std::min(stamp, seen_at);
  end.returned = true;
  end.rc = cb_->rc;
  end.ns = static_cast<double>(t1 - t0);
  end.woke_ns = stamp > 0 ? static_cast<double>(seen_at - stamp) : -1;
  return end;
}

absl::StatusOr<double> CandidateProcess::CalibrateRoundTrip(int n) {
  std::vector<double> ns;
  for (int i = 0; i < n; ++i) {
    // Every other ping as between real calls that leave time for the other
    // side to go to sleep, the rest back to back as between calls that do
    // not (a small workload's flush and placement are shorter than the
    // candidate's spin): a call can cost as little as either, and waking a
    // sleeper can cost 12 us on a busy VM, which subtracted from a call that
    // found the candidate spinning read a 12 us kernel as 0.5 us.
    if (i % 2 == 0) {
      struct timespec ts{0, 2000000};
      nanosleep(&ts, nullptr);
    }
    CallEnd e = Send(ch::kArm);
    if (e.returned) e = Send(ch::kPing);
    if (!e.returned)
      return absl::InternalError(absl::StrCat("the candidate process did not start: ", e.how,
                                              "\n", LogTail()));
    ns.push_back(e.ns);
  }
  // This process's own wake-up, on answers that come after it fell asleep:
  // a few times the typical one is allowed between an answer's stamp and
  // reading it before the stamp is no longer believed.
  std::vector<double> woke;
  for (int i = 0; i < 9; ++i) {
    const CallEnd e = Send(ch::kPingLate);
    if (!e.returned)
      return absl::InternalError(absl::StrCat("the candidate process did not start: ", e.how,
                                              "\n", LogTail()));
    if (e.woke_ns >= 0) woke.push_back(e.woke_ns);
  }
  if (!woke.empty()) {
    std::nth_element(woke.begin(), woke.begin() + woke.size() / 2, woke.end());
    wake_slack_ns_ = std::min(kMaxWakeSlackNs, 3 * static_cast<int64_t>(woke[woke.size() / 2]) +
                                                   kMinWakeSlackNs);
  }
  std::sort(ns.begin(), ns.end());
  // The fastest: what every call costs at least. A median taken while other
  // load slowed the pings would be subtracted from calls that ran unslowed,
  // reading them faster than they are (to 0 for a microsecond kernel).
  round_trip_ns_ = ns.empty() ? 0.0 : ns.front();
  return round_trip_ns_;
}

void CandidateProcess::PingBeforeCall() {
  const CallEnd e = Send(ch::kPing);
  if (e.returned && e.ns < round_trip_ns_) round_trip_ns_ = e.ns;
}

absl::Status CandidateProcess::Load(const std::string& target) {
  if (target.size() >= sizeof(cb_->library_path))
    return absl::InvalidArgumentError(absl::StrCat("load target too long: ", target));
  // Empty: the library open on kLibraryFd.
  std::memcpy(cb_->library_path, target.c_str(), target.size() + 1);
  const CallEnd e = Send(ch::kLoad);
  if (!e.returned)
    return absl::FailedPreconditionError(
        absl::StrCat("loading the library ", e.how, "\n", LogTail()));
  if (e.rc != 0) {
    cb_->message[sizeof(cb_->message) - 1] = '\0';
    return absl::FailedPreconditionError(absl::StrCat(
        target.empty() ? "cannot load the compiled library: " : "cannot load the solution: ",
        cb_->message));
  }
  return absl::OkStatus();
}

void CandidateProcess::KillAll() {
  if (pid_ > 0 && !exited_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    int st = 0;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    exited_ = true;
    status_ = st;
  }
  // What it started comes back to this process (a subreaper) as its
  // parents die: kill and reap until nothing is left.
  for (int round = 0; round < 10000; ++round) {
    const std::vector<pid_t> kids = Children();
    if (kids.empty()) break;
    for (pid_t k : kids) kill(k, SIGKILL);
    for (pid_t k : kids) waitpid(k, nullptr, 0);
  }
}

size_t ArenaBytesFor(const Problem& problem) {
  size_t most = 0;
  for (const Workload& w : problem.workloads) {
    size_t need = 0;
    for (const auto* specs : {&problem.definition.inputs, &problem.definition.outputs})
      for (const Tensor& t : MakeTensors(*specs, w)) need += AlignUp(t.bytes, kAlign) + 2 * kCanary + kAlign;
    most = std::max(most, need);
  }
  return 2 * most + (64 << 10);
}

std::vector<uint64_t> PlaceTensors(const std::vector<size_t>& bytes, size_t arena_bytes,
                                   size_t align, size_t canary, std::mt19937_64* rng) {
  const size_t n = bytes.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), *rng);
  size_t need = 0;
  for (size_t i = 0; i < n; ++i) need += AlignUp(bytes[i], align) + 2 * canary;
  const size_t slack = arena_bytes > need ? (arena_bytes - need) / align : 0;
  std::vector<size_t> cuts(n);
  for (size_t& c : cuts) c = slack == 0 ? 0 : (*rng)() % (slack + 1);
  std::sort(cuts.begin(), cuts.end());
  std::vector<uint64_t> offset(n);
  size_t at = 0, prev_cut = 0;
  for (size_t k = 0; k < n; ++k) {
    at += (cuts[k] - prev_cut) * align;
    prev_cut = cuts[k];
    offset[order[k]] = at + canary;
    at += AlignUp(bytes[order[k]], align) + 2 * canary;
  }
  return offset;
}

ProcessBackend::ProcessBackend(CandidateProcess* process, size_t flush_bytes, uint64_t seed)
    : p_(process), flush_(flush_bytes), rng_(seed ^ 0x5eed) {}

Observation ProcessBackend::Call(const CallRequest& req) {
  Observation ob;
  const std::vector<Tensor>& ins = *req.ins;
  const std::vector<Tensor>& outs = *req.outs;
  const size_t n = ins.size() + outs.size();
  if (n > static_cast<size_t>(ch::kMaxTensors)) {
    ob.end = Observation::End::kHarnessError;
    ob.detail = absl::StrCat("more than ", ch::kMaxTensors, " tensors");
    return ob;
  }
  auto tensor = [&](size_t i) -> const Tensor& {
    return i < ins.size() ? ins[i] : outs[i - ins.size()];
  };
  std::vector<size_t> sizes(n);
  for (size_t i = 0; i < n; ++i) sizes[i] = tensor(i).bytes;
  const std::vector<uint64_t> offset = PlaceTensors(sizes, p_->arena_bytes(), kAlign, kCanary, &rng_);
  if (req.flush) {
    // Evict caches first; the inputs written after it are the call's own.
    const unsigned char v = static_cast<unsigned char>(calls_);
    std::memset(flush_.data(), v, flush_.size());
  }
  ++calls_;
  const CandidateProcess::CallEnd armed = p_->Send(ch::kArm);
  if (armed.returned) p_->PingBeforeCall();
  char* arena = p_->arena();
  ch::ControlBlock* cb = p_->control();
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = tensor(i);
    std::memset(arena + offset[i] - kCanary, kCanaryByte, kCanary);
    std::memset(arena + offset[i] + t.bytes, kCanaryByte, kCanary);
    if (i < ins.size()) {
      std::memcpy(arena + offset[i], req.inputs[i]->data(), t.bytes);
    } else {
      Poison(arena + offset[i], t.dtype, t.bytes / DTypeSize(t.dtype));
    }
    ch::TensorSlot& s = cb->tensors[i];
    s.offset = offset[i];
    s.dtype = static_cast<int32_t>(t.dtype);
    s.ndim = static_cast<int32_t>(t.shape.size());
    s.scalar = t.scalar ? 1 : 0;
    s.scalar_bits = 0;
    if (t.scalar && i < ins.size())
      std::memcpy(&s.scalar_bits, req.inputs[i]->data(), std::min<size_t>(t.bytes, 8));
    for (size_t d = 0; d < t.shape.size() && d < ch::kMaxDims; ++d) {
      s.shape[d] = t.shape[d];
      s.strides[d] = t.strides[d];
    }
  }
  cb->num_inputs = static_cast<int32_t>(ins.size());
  cb->num_outputs = static_cast<int32_t>(outs.size());
  cb->repeat = std::max<int64_t>(1, req.repeat);
  CandidateProcess::CallEnd end = armed;
  if (armed.returned) {
    if (req.on_send) req.on_send();
    end = p_->Send(ch::kCall);
    if (req.on_answer) req.on_answer();
  }
  // The outputs as they were the moment the answer arrived.
  for (size_t j = 0; j < outs.size(); ++j)
    ob.outputs.emplace_back(arena + offset[ins.size() + j], outs[j].bytes);
  out_offsets_.assign(offset.begin() + static_cast<long>(ins.size()), offset.end());
  out_bytes_.clear();
  for (const Tensor& t : outs) out_bytes_.push_back(t.bytes);
  if (!end.returned) {
    ob.end = Observation::End::kCrashed;
    ob.detail = end.how;
    const std::string tail = p_->LogTail();
    if (!tail.empty()) absl::StrAppend(&ob.detail, "; its last output:\n", tail);
    return ob;
  }
  ob.rc = end.rc;
  ob.ns = std::max(0.0, end.ns - p_->round_trip_ns()) / static_cast<double>(cb->repeat);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = tensor(i);
    for (const char* c : {arena + offset[i] - kCanary, arena + offset[i] + t.bytes}) {
      for (size_t b = 0; b < kCanary; ++b) {
        if (static_cast<unsigned char>(c[b]) == kCanaryByte) continue;
        ob.end = Observation::End::kOutOfBounds;
        ob.detail = absl::StrCat("wrote ", c < arena + offset[i] ? "before the start" : "past the end",
                                 " of ", i < ins.size() ? "input '" : "output '", t.name,
                                 "' (canary bytes changed)");
        return ob;
      }
    }
  }
  for (size_t i = 0; i < ins.size() && ob.modified_input < 0; ++i) {
    if (std::memcmp(arena + offset[i], req.inputs[i]->data(), ins[i].bytes) != 0)
      ob.modified_input = static_cast<int>(i);
  }
  return ob;
}

std::vector<std::string> ProcessBackend::OutputsNow() {
  std::vector<std::string> now;
  for (size_t j = 0; j < out_offsets_.size(); ++j)
    now.emplace_back(p_->arena() + out_offsets_[j], out_bytes_[j]);
  return now;
}

}  // namespace ratchet::kernels
