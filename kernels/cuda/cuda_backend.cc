#include "kernels/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_check.h"
#include "kernels/problem/dtype.h"

namespace ratchet::kernels {
namespace {

namespace ch = channel;

// Tensors start 256-byte aligned, as cudaMalloc'd buffers do (vector loads,
// TMA and cuBLAS's fast paths expect it); the canaries fill that much on
// each side.
constexpr size_t kAlign = 256;
constexpr size_t kCanary = 256;
constexpr unsigned char kCanaryByte = 0xA5;

size_t AlignUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

// A call's tensors in the arena's order: its inputs, then its outputs.
const Tensor& TensorAt(const CallRequest& req, size_t i) {
  return i < req.ins->size() ? (*req.ins)[i] : (*req.outs)[i - req.ins->size()];
}

// What an out-of-bounds write says, found on the host or on the device.
std::string CanaryChanged(const CallRequest& req, size_t i, bool before) {
  return absl::StrCat("wrote ", before ? "before the start" : "past the end", " of ",
                      i < req.ins->size() ? "input '" : "output '", TensorAt(req, i).name,
                      "' (canary bytes changed)");
}

// The device's counters of one call's checks.
struct CallChecks {
  device_check::OutputCounts outputs[ch::kMaxTensors];
  unsigned int input_differs[ch::kMaxTensors];
  int first_bad_canary;  // a region's index; 0x7f7f7f7f: none
};
constexpr unsigned char kNoBadCanary = 0x7f;

// Round data kept on the device: at most a quarter of the memory free once
// the arena is allocated, and 16 GiB.
size_t ResidentLimit() {
  size_t free_bytes = 0, total = 0;
  if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) return 0;
  return std::min<size_t>(free_bytes / 4, size_t{16} << 30);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaProcessBackend>> CudaProcessBackend::Create(
    int device_index, size_t arena_bytes, size_t flush_bytes, uint64_t seed) {
  std::unique_ptr<CudaProcessBackend> b(new CudaProcessBackend());
  b->device_ = device_index;
  b->arena_bytes_ = AlignUp(std::max<size_t>(arena_bytes, 1), 1 << 21);
  b->flush_bytes_ = std::max<size_t>(flush_bytes, 1 << 20);
  b->rng_.seed(seed ^ 0xc0da5eed);
  RATCHET_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_index));
  void* arena = nullptr;
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMalloc(&arena, b->arena_bytes_));
  b->arena_ = static_cast<char*>(arena);
  // Nothing of an earlier user of this memory for a candidate to find.
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMemset(b->arena_, 0, b->arena_bytes_));
  cudaIpcMemHandle_t handle;
  static_assert(sizeof(handle) <= sizeof(b->ipc_handle_), "ipc handle does not fit");
  RATCHET_CUDA_RETURN_IF_ERROR(cudaIpcGetMemHandle(&handle, b->arena_));
  std::memcpy(b->ipc_handle_, &handle, sizeof(handle));
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMalloc(&b->flush_, b->flush_bytes_));
  const char* device_check = std::getenv("RATCHET_DEVICE_CHECK");
  b->device_check_ = device_check == nullptr || std::string(device_check) != "0";
  if (b->device_check_) {
    RATCHET_CUDA_RETURN_IF_ERROR(cudaMalloc(&b->checks_, sizeof(CallChecks)));
    b->resident_limit_ = ResidentLimit();
  }
  RATCHET_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return b;
}

void CudaProcessBackend::NewRounds() {
  for (auto& [host, buffer] : resident_) (void)cudaFree(buffer.data);
  resident_.clear();
  resident_bytes_ = 0;
}

const char* CudaProcessBackend::Resident(const std::string* host) {
  auto it = resident_.find(host);
  if (it != resident_.end() && it->second.bytes == host->size()) return it->second.data;
  if (it != resident_.end()) return nullptr;  // not the bytes it was made from
  if (resident_bytes_ + host->size() > resident_limit_) return nullptr;
  void* p = nullptr;
  if (cudaMalloc(&p, std::max<size_t>(host->size(), 1)) != cudaSuccess) {
    (void)cudaGetLastError();
    resident_limit_ = resident_bytes_;  // the device is full: no more
    return nullptr;
  }
  if (cudaMemcpy(p, host->data(), host->size(), cudaMemcpyHostToDevice) != cudaSuccess) {
    (void)cudaFree(p);
    return nullptr;
  }
  resident_[host] = DeviceBuffer{static_cast<char*>(p), host->size()};
  resident_bytes_ += host->size();
  return static_cast<char*>(p);
}

bool CudaProcessBackend::OnDevice(const CallRequest& req, RoundOnDevice* round) {
  const std::vector<Tensor>& outs = *req.outs;
  if (req.references.size() != outs.size() || req.tolerances.size() != outs.size() ||
      2 * (req.ins->size() + outs.size()) > static_cast<size_t>(device_check::kMaxCanaryRegions))
    return false;
  for (const std::string* in : req.inputs) {
    round->inputs.push_back(Resident(in));
    if (round->inputs.back() == nullptr) return false;
  }
  for (size_t j = 0; j < outs.size(); ++j) {
    if (req.references[j]->size() != outs[j].bytes) return false;
    round->references.push_back(Resident(req.references[j]));
    if (round->references.back() == nullptr) return false;
    // A decoy of another size is none (NearerDecoy says so on the host).
    const std::string* decoy = req.decoys.empty() ? nullptr : req.decoys[j];
    if (decoy != nullptr && decoy->size() != outs[j].bytes) decoy = nullptr;
    round->decoys.push_back(decoy != nullptr ? Resident(decoy) : nullptr);
    if (decoy != nullptr && round->decoys.back() == nullptr) return false;
  }
  return true;
}

absl::StatusOr<bool> CudaProcessBackend::CheckOnDevice(const CallRequest& req,
                                                       const std::vector<uint64_t>& offset,
                                                       const RoundOnDevice& round,
                                                       Observation* ob) {
  const std::vector<Tensor>& ins = *req.ins;
  const std::vector<Tensor>& outs = *req.outs;
  const size_t n = ins.size() + outs.size();
  // The outputs as they were when the answer arrived, where the candidate
  // process cannot reach them.
  if (snapshots_.size() < outs.size()) snapshots_.resize(outs.size());
  for (size_t j = 0; j < outs.size(); ++j) {
    DeviceBuffer& snap = snapshots_[j];
    if (snap.bytes < outs[j].bytes) {
      if (snap.data != nullptr) (void)cudaFree(snap.data);
      snap = DeviceBuffer{};
      void* p = nullptr;
      RATCHET_CUDA_RETURN_IF_ERROR(cudaMalloc(&p, outs[j].bytes));
      snap = DeviceBuffer{static_cast<char*>(p), outs[j].bytes};
    }
    RATCHET_CUDA_RETURN_IF_ERROR(cudaMemcpy(snap.data, arena_ + offset[ins.size() + j],
                                            outs[j].bytes, cudaMemcpyDeviceToDevice));
  }
  CallChecks* checks = static_cast<CallChecks*>(checks_);
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMemset(checks, 0, sizeof(CallChecks)));
  RATCHET_CUDA_RETURN_IF_ERROR(
      cudaMemset(&checks->first_bad_canary, kNoBadCanary, sizeof(int)));
  std::vector<uint64_t> regions;
  for (size_t i = 0; i < n; ++i) {
    regions.push_back(offset[i] - kCanary);
    regions.push_back(offset[i] + TensorAt(req, i).bytes);
  }
  RATCHET_CUDA_RETURN_IF_ERROR(device_check::LaunchCanaryCheck(
      arena_, regions.data(), static_cast<int>(regions.size()), static_cast<int>(kCanary),
      kCanaryByte, &checks->first_bad_canary, nullptr));
  for (size_t i = 0; i < ins.size(); ++i) {
    RATCHET_CUDA_RETURN_IF_ERROR(device_check::LaunchBytesDiffer(
        arena_ + offset[i], round.inputs[i], ins[i].bytes, &checks->input_differs[i], nullptr));
  }
  for (size_t j = 0; j < outs.size(); ++j) {
    device_check::CompareArgs a;
    a.out = snapshots_[j].data;
    a.out_dtype = a.ref_dtype = static_cast<int>(outs[j].dtype);
    a.ref = round.references[j];
    a.decoy = round.decoys[j];
    a.count = static_cast<int64_t>(outs[j].bytes / DTypeSize(outs[j].dtype));
    a.atol = req.tolerances[j].atol;
    a.rtol = req.tolerances[j].rtol;
    a.max_error_factor = req.tolerances[j].max_error_factor;
    RATCHET_CUDA_RETURN_IF_ERROR(device_check::LaunchCompare(a, &checks->outputs[j], nullptr));
  }
  CallChecks found;
  RATCHET_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(&found, checks, sizeof(CallChecks), cudaMemcpyDeviceToHost));
  if (found.first_bad_canary < static_cast<int>(regions.size())) {
    ob->end = Observation::End::kOutOfBounds;
    ob->detail = CanaryChanged(req, static_cast<size_t>(found.first_bad_canary) / 2,
                               found.first_bad_canary % 2 == 0);
    return true;
  }
  for (size_t i = 0; i < ins.size(); ++i) {
    if (found.input_differs[i] == 0) continue;
    ob->modified_input = static_cast<int>(i);
    return true;
  }
  ob->matched_fraction = 1;
  ob->max_abs_error = 0;
  for (size_t j = 0; j < outs.size(); ++j) {
    const device_check::OutputCounts& c = found.outputs[j];
    const int64_t count = static_cast<int64_t>(outs[j].bytes / DTypeSize(outs[j].dtype));
    if (!device_check::Passes(c, count, req.tolerances[j].min_matched_fraction)) {
      ob->failed_where_checked = true;
      return false;
    }
    double err = 0;
    std::memcpy(&err, &c.max_abs_error_bits, sizeof(err));
    ob->matched_fraction = std::min(
        ob->matched_fraction,
        count > 0 ? static_cast<double>(c.matched) / static_cast<double>(count) : 1.0);
    ob->max_abs_error = std::max(ob->max_abs_error, err);
  }
  ob->checked = true;
  return true;
}

CudaProcessBackend::~CudaProcessBackend() {
  // Which way the calls were checked, for whoever reads the harness's log.
  if (device_checked_calls_ + host_checked_calls_ > 0)
    std::fprintf(stderr, "cuda: %lld call(s) checked on the device, %lld on the host\n",
                 static_cast<long long>(device_checked_calls_),
                 static_cast<long long>(host_checked_calls_));
  NewRounds();
  for (DeviceBuffer& snap : snapshots_) (void)cudaFree(snap.data);
  if (checks_ != nullptr) (void)cudaFree(checks_);
  for (auto& [dtype, t] : poison_) (void)cudaFree(t.data);
  if (flush_ != nullptr) (void)cudaFree(flush_);
  if (arena_ != nullptr) (void)cudaFree(arena_);
}

void CudaProcessBackend::Prepare(ch::ControlBlock* cb) const {
  cb->is_device = 1;
  cb->device_index = device_;
  cb->device_arena_bytes = arena_bytes_;
  std::memcpy(cb->ipc_handle, ipc_handle_, sizeof(ipc_handle_));
}

void CudaProcessBackend::Attach(CandidateProcess* process) { p_ = process; }

absl::Status CudaProcessBackend::PoisonOnDevice(char* dst, DType dtype, size_t n) {
  if (n == 0) return absl::OkStatus();
  Template& t = poison_[static_cast<int>(dtype)];
  if (t.bytes < n) {
    if (t.data != nullptr) (void)cudaFree(t.data);
    t = Template{};
    // The exact bytes Poison() writes, so that the pipeline recognises an
    // output nobody wrote ("stale-output").
    std::string host(n, '\0');
    Poison(host.data(), dtype, n / DTypeSize(dtype));
    void* p = nullptr;
    RATCHET_CUDA_RETURN_IF_ERROR(cudaMalloc(&p, n));
    t.data = static_cast<char*>(p);
    t.bytes = n;
    RATCHET_CUDA_RETURN_IF_ERROR(cudaMemcpy(t.data, host.data(), n, cudaMemcpyHostToDevice));
  }
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMemcpy(dst, t.data, n, cudaMemcpyDeviceToDevice));
  return absl::OkStatus();
}

Observation CudaProcessBackend::Call(const CallRequest& req) {
  Observation ob;
  // A failure of this process's own CUDA calls: before the candidate's
  // first call the harness's problem; after one most likely the
  // candidate's doing (a fault that took the device down).
  auto cuda_failed = [&](const absl::Status& st) {
    ob.end = calls_ > 0 ? Observation::End::kCrashed : Observation::End::kHarnessError;
    ob.detail = calls_ > 0 ? absl::StrCat("the harness's own CUDA calls failed after the "
                                          "candidate's calls: ", st.message())
                           : std::string(st.message());
    return ob;
  };
  const std::vector<Tensor>& ins = *req.ins;
  const std::vector<Tensor>& outs = *req.outs;
  const size_t n = ins.size() + outs.size();
  if (p_ == nullptr || n > static_cast<size_t>(ch::kMaxTensors)) {
    ob.end = Observation::End::kHarnessError;
    ob.detail = p_ == nullptr ? "no candidate process attached"
                              : absl::StrCat("more than ", ch::kMaxTensors, " tensors");
    return ob;
  }
  std::vector<size_t> sizes(n);
  size_t need = 0;
  for (size_t i = 0; i < n; ++i) {
    sizes[i] = TensorAt(req, i).bytes;
    need += AlignUp(sizes[i], kAlign) + 2 * kCanary;
  }
  if (need > arena_bytes_) {
    ob.end = Observation::End::kHarnessError;
    ob.detail = absl::StrCat("the tensors need ", need, " bytes of a ", arena_bytes_,
                             "-byte device arena");
    return ob;
  }
  const std::vector<uint64_t> offset = PlaceTensors(sizes, arena_bytes_, kAlign, kCanary, &rng_);
  // Checked on the device when every piece of this round's data is there
  // (or fits there now), else on the host.
  RoundOnDevice round;
  const bool on_device = device_check_ && OnDevice(req, &round);
  ch::ControlBlock* cb = p_->control();
  absl::Status st;
  for (size_t i = 0; i < n && st.ok(); ++i) {
    const Tensor& t = TensorAt(req, i);
    char* at = arena_ + offset[i];
    st = CudaStatus(cudaMemset(at - kCanary, kCanaryByte, kCanary), "cudaMemset(canary)");
    if (st.ok())
      st = CudaStatus(cudaMemset(at + t.bytes, kCanaryByte, kCanary), "cudaMemset(canary)");
    if (st.ok() && i < ins.size()) {
      st = on_device
               ? CudaStatus(cudaMemcpy(at, round.inputs[i], t.bytes, cudaMemcpyDeviceToDevice),
                            "cudaMemcpy(input)")
               : CudaStatus(cudaMemcpy(at, req.inputs[i]->data(), t.bytes,
                                       cudaMemcpyHostToDevice),
                            "cudaMemcpy(input)");
    } else if (st.ok()) {
      st = PoisonOnDevice(at, t.dtype, t.bytes);
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
  // L2 evicted after the inputs were written (writes go through L2), then
  // the device idle: every copy above has landed before the candidate runs,
  // and nothing of the harness's runs during the timed call.
  if (st.ok() && req.flush)
    st = CudaStatus(cudaMemset(flush_, calls_ & 0xff, flush_bytes_), "cudaMemset(L2 flush)");
  if (st.ok()) st = CudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  if (!st.ok()) return cuda_failed(st);
  cb->num_inputs = static_cast<int32_t>(ins.size());
  cb->num_outputs = static_cast<int32_t>(outs.size());
  cb->repeat = std::max<int64_t>(1, req.repeat);
  const int64_t repeat = cb->repeat;  // the block is the candidate's to change
  ++calls_;
  const CandidateProcess::CallEnd armed = p_->Send(ch::kArm);
  CandidateProcess::CallEnd end = armed;
  if (armed.returned) {
    if (req.on_send) req.on_send();
    end = p_->Send(ch::kCall);
    if (req.on_answer) req.on_answer();
  }
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
  if (end.rc == ch::kRcCudaError) {
    ob.end = Observation::End::kCrashed;
    cb->message[sizeof(cb->message) - 1] = '\0';
    ob.detail = cb->message;
    return ob;
  }
  ob.rc = end.rc;
  ob.ns = std::max(0.0, end.ns - p_->round_trip_ns()) / static_cast<double>(repeat);
  if (on_device) {
    const absl::StatusOr<bool> decided = CheckOnDevice(req, offset, round, &ob);
    if (!decided.ok()) return cuda_failed(decided.status());
    if (*decided) {
      ++device_checked_calls_;
      return ob;
    }
    // Failed on the device: the snapshot, as it was, to the host.
    for (size_t j = 0; j < outs.size() && st.ok(); ++j) {
      std::string b(outs[j].bytes, '\0');
      st = CudaStatus(cudaMemcpy(b.data(), snapshots_[j].data, b.size(), cudaMemcpyDeviceToHost),
                      "cudaMemcpy(output)");
      ob.outputs.push_back(std::move(b));
    }
    if (!st.ok()) return cuda_failed(st);
    ++host_checked_calls_;
    return ob;
  }
  ++host_checked_calls_;
  // The outputs as they were the moment the answer arrived (the candidate
  // process had synchronised its whole device).
  for (size_t j = 0; j < outs.size() && st.ok(); ++j) {
    std::string b(outs[j].bytes, '\0');
    st = CudaStatus(cudaMemcpy(b.data(), arena_ + offset[ins.size() + j], b.size(),
                               cudaMemcpyDeviceToHost),
                    "cudaMemcpy(output)");
    ob.outputs.push_back(std::move(b));
  }
  if (!st.ok()) return cuda_failed(st);
  char canary[kCanary];
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = TensorAt(req, i);
    for (const bool before : {true, false}) {
      const char* at = before ? arena_ + offset[i] - kCanary : arena_ + offset[i] + t.bytes;
      st = CudaStatus(cudaMemcpy(canary, at, kCanary, cudaMemcpyDeviceToHost), "cudaMemcpy(canary)");
      if (!st.ok()) return cuda_failed(st);
      for (size_t b = 0; b < kCanary; ++b) {
        if (static_cast<unsigned char>(canary[b]) == kCanaryByte) continue;
        ob.end = Observation::End::kOutOfBounds;
        ob.detail = CanaryChanged(req, i, before);
        return ob;
      }
    }
  }
  for (size_t i = 0; i < ins.size() && ob.modified_input < 0; ++i) {
    std::string now(ins[i].bytes, '\0');
    st = CudaStatus(cudaMemcpy(now.data(), arena_ + offset[i], now.size(), cudaMemcpyDeviceToHost),
                    "cudaMemcpy(input)");
    if (!st.ok()) return cuda_failed(st);
    if (now != *req.inputs[i]) ob.modified_input = static_cast<int>(i);
  }
  return ob;
}

std::vector<std::string> CudaProcessBackend::OutputsNow() {
  std::vector<std::string> now;
  for (size_t j = 0; j < out_offsets_.size(); ++j) {
    std::string b(out_bytes_[j], '\0');
    if (cudaMemcpy(b.data(), arena_ + out_offsets_[j], b.size(), cudaMemcpyDeviceToHost) !=
        cudaSuccess)
      return {};  // the pipeline then compares with the snapshot
    now.push_back(std::move(b));
  }
  return now;
}

}  // namespace ratchet::kernels
