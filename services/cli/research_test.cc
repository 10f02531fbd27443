// The pure parts of diff and export: the unified diff, the knob section, the
// solution.json rewrite and the exported folder; and `ratchet events` against
// a coordinator service on loopback.
#include "services/cli/research.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "services/cli/commands.h"

namespace ratchet::cli {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(UnifiedDiff, EqualTextsGiveNothing) { EXPECT_EQ(UnifiedDiff("a\nb\n", "a\nb\n", "x", "y"), ""); }

TEST(UnifiedDiff, OneChangedLineWithContext) {
  std::string from, to;
  for (int i = 1; i <= 10; ++i) {
    from += "line" + std::to_string(i) + "\n";
    to += (i == 5 ? std::string("FIVE") : "line" + std::to_string(i)) + "\n";
  }
  EXPECT_EQ(UnifiedDiff(from, to, "a/k.cc", "b/k.cc"),
            "--- a/k.cc\n+++ b/k.cc\n@@ -2,7 +2,7 @@\n line2\n line3\n line4\n-line5\n+FIVE\n"
            " line6\n line7\n line8\n");
}

TEST(UnifiedDiff, SeparateHunksAndInsertions) {
  std::string from, to;
  for (int i = 1; i <= 20; ++i) from += std::to_string(i) + "\n";
  to = "0\n" + from;
  to.replace(to.find("\n15\n"), 4, "\n15\nsixteen-ish\n");
  std::string d = UnifiedDiff(from, to, "a", "b", 1);
  EXPECT_EQ(d, "--- a\n+++ b\n@@ -1 +1,2 @@\n+0\n 1\n@@ -15,2 +16,3 @@\n 15\n+sixteen-ish\n 16\n");
}

TEST(UnifiedDiff, NewFileAgainstEmpty) {
  EXPECT_EQ(UnifiedDiff("", "x\ny\n", "/dev/null", "b/n.h"),
            "--- /dev/null\n+++ b/n.h\n@@ -0,0 +1,2 @@\n+x\n+y\n");
}

TEST(DiffSolutions, KnobsThenFiles) {
  v1::Solution a, b;
  (*a.mutable_knobs())["VEC"] = "1";
  (*a.mutable_knobs())["FUSE"] = "0";
  (*b.mutable_knobs())["VEC"] = "8";
  (*b.mutable_knobs())["FUSE"] = "0";
  (*a.mutable_files())["kernel.cc"] = "int x = 1;\n";
  (*b.mutable_files())["kernel.cc"] = "int x = 2;\n";
  (*a.mutable_files())["solution.json"] = "{}\n";
  (*b.mutable_files())["solution.json"] = "{}\n";
  EXPECT_EQ(DiffSolutions(a, b, "#1", "#7"),
            "knobs #1 -> #7\n-VEC=1\n+VEC=8\n--- #1/kernel.cc\n+++ #7/kernel.cc\n@@ -1 +1 @@\n"
            "-int x = 1;\n+int x = 2;\n");
}

TEST(SolutionJson, DefaultsTakeTheCandidatesKnobsAndKeepTheirType) {
  const std::string json = R"({"name": "s", "knobs": {
      "VEC": {"choices": [1, 4, 8], "default": 1},
      "MODE": {"choices": ["a", "b"], "default": "a"}}})";
  google::protobuf::Map<std::string, std::string> knobs;
  knobs["VEC"] = "8";
  knobs["MODE"] = "b";
  auto out = SolutionJsonWithDefaults(json, knobs);
  ASSERT_TRUE(out.ok()) << out.status();
  auto doc = nlohmann::json::parse(*out);
  EXPECT_EQ(doc["knobs"]["VEC"]["default"], 8);
  EXPECT_EQ(doc["knobs"]["MODE"]["default"], "b");
  EXPECT_EQ(doc["name"], "s");
  EXPECT_FALSE(SolutionJsonWithDefaults("[1]", knobs).ok());
}

TEST(Export, WritesAReproducibleFolder) {
  v1::Campaign campaign;
  campaign.set_id(3);
  campaign.set_baseline_score(0.1);
  campaign.mutable_spec()->set_name("demo");
  campaign.mutable_spec()->set_device(v1::DEVICE_CPU);
  campaign.mutable_spec()->mutable_problem()->set_name("p");
  campaign.mutable_spec()->mutable_problem()->set_definition_json("{\"name\": \"p\"}");
  campaign.mutable_spec()->mutable_problem()->set_workload_jsonl("{}\n");
  campaign.mutable_spec()->mutable_harness()->set_repetitions(7);
  v1::CandidateDetail d;
  auto* c = d.mutable_candidate();
  c->set_id(12);
  c->set_parent_id(4);
  c->set_score(0.3);
  c->set_status(v1::CANDIDATE_ACCEPTED);
  c->set_description("VEC 1→8");
  (*c->mutable_solution()->mutable_files())["kernel.cc"] = "// k\n";
  (*c->mutable_solution()->mutable_files())["solution.json"] =
      R"({"knobs": {"VEC": {"choices": [1, 8], "default": 1}}})";
  (*c->mutable_solution()->mutable_knobs())["VEC"] = "8";

  fs::path dir = fs::temp_directory_path() / ("ratchet-export-" + std::to_string(getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE(ExportCandidate(campaign, d, dir.string()).ok());
  EXPECT_EQ(Read(dir / "problem/definition.json"), "{\"name\": \"p\"}");
  EXPECT_EQ(Read(dir / "solution/kernel.cc"), "// k\n");
  EXPECT_EQ(nlohmann::json::parse(Read(dir / "solution/solution.json"))["knobs"]["VEC"]["default"], 8);
  std::string run = Read(dir / "run.sh");
  EXPECT_NE(run.find("bench problem solution --repetitions 7 --knob 'VEC=8'"), std::string::npos) << run;
  struct stat st;
  ASSERT_EQ(stat((dir / "run.sh").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  EXPECT_NE(Read(dir / "README.md").find("3.00x"), std::string::npos);
  // Never over an existing export.
  EXPECT_FALSE(ExportCandidate(campaign, d, dir.string()).ok());
  // A file path that climbs out of the folder is refused.
  fs::remove_all(dir);
  (*c->mutable_solution()->mutable_files())["../evil"] = "x";
  EXPECT_FALSE(ExportCandidate(campaign, d, dir.string()).ok());
  fs::remove_all(dir);
}

// A campaign's name, knobs and descriptions come from clients: none of them
// may become a command of run.sh, which the person exporting will run.
TEST(Export, ClientTextNeverBecomesACommand) {
  const fs::path dir =
      fs::temp_directory_path() / ("ratchet-export-inject-" + std::to_string(getpid()));
  const fs::path marker = dir.string() + "-pwned";
  fs::remove_all(dir);
  fs::remove(marker);
  v1::Campaign campaign;
  campaign.set_id(5);
  campaign.mutable_spec()->set_name("x\nrm -rf /tmp/pwned\ntouch " + marker.string() + "\n");
  campaign.mutable_spec()->mutable_problem()->set_name("p\n# not a heading\x1b[2J");
  v1::CandidateDetail d;
  auto* c = d.mutable_candidate();
  c->set_id(1);
  c->set_description("two\nlines\x1b]0;title\x07");
  (*c->mutable_solution()->mutable_files())["kernel.cc"] = "// k\n";
  const std::string evil_value = "8'; touch " + marker.string() + "; echo '\n$(id)`id`";
  (*c->mutable_solution()->mutable_knobs())["VEC"] = evil_value;
  ASSERT_TRUE(ExportCandidate(campaign, d, dir.string()).ok());

  const std::string run = Read(dir / "run.sh");
  std::istringstream lines(run);
  int line_number = 0;
  for (std::string line; std::getline(lines, line); ++line_number) {
    EXPECT_NE(line.rfind("rm", 0), 0u) << "line " << line_number << ": " << line;
    EXPECT_NE(line.rfind("touch", 0), 0u) << "line " << line_number << ": " << line;
  }
  const std::string readme = Read(dir / "README.md");
  EXPECT_EQ(readme.find('\x1b'), std::string::npos) << "terminal escapes reach README.md";
  EXPECT_EQ(readme.find("\n# not a heading"), std::string::npos) << readme;
  EXPECT_NE(readme.find("two\nlines"), std::string::npos) << "a description keeps its lines";

  // Run the script for real, with echo standing in for ratchet: the knob
  // arrives as one literal argument and nothing else runs.
  const std::string command = "RATCHET=echo sh " + (dir / "run.sh").string();
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_FALSE(fs::exists(marker)) << "run.sh ran a client's command";
  EXPECT_EQ(output, "bench problem solution --knob VEC=" + evil_value + "\n");
  fs::remove_all(dir);
  fs::remove(marker);
}

// ---------------------------------------------------------------------------
// ratchet events

// Campaign 7's stored events, served three at a time (a coordinator may cap
// pages below what the CLI asks for). With `finish_on_second_look`, the
// campaign runs until the second GetCampaign, which also stores its last
// event: a campaign ending while `--follow` watches it.
class EventsCoordinator final : public v1::CoordinatorService::Service {
 public:
  grpc::Status GetCampaign(grpc::ServerContext*, const v1::GetCampaignRequest* req,
                           v1::Campaign* out) override {
    if (req->campaign_id() != 7) return grpc::Status(grpc::NOT_FOUND, "campaign 99 not found");
    std::lock_guard<std::mutex> lock(mu);
    ++campaign_reads;
    out->set_id(7);
    out->set_state(v1::CAMPAIGN_FINISHED);
    if (finish_on_second_look && campaign_reads < 2) out->set_state(v1::CAMPAIGN_RUNNING);
    if (finish_on_second_look && campaign_reads == 2) Add(9'000'000, "campaign finished");
    return grpc::Status::OK;
  }
  grpc::Status ListEvents(grpc::ServerContext*, const v1::ListEventsRequest* req,
                          v1::ListEventsResponse* out) override {
    if (req->campaign_id() != 7) return grpc::Status(grpc::NOT_FOUND, "campaign 99 not found");
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(*req);
    const int limit = std::min(req->limit() > 0 ? req->limit() : 1000, 3);
    for (const v1::StoredEvent& e : events)
      if (e.seq() > req->after_seq() && out->events_size() < limit) *out->add_events() = e;
    return grpc::Status::OK;
  }

  void Add(int64_t unix_ms, const std::string& text) {
    v1::StoredEvent* e = events.Add();
    e->set_seq(10 * (events.size()));  // seqs of a store skip (other campaigns)
    e->set_unix_ms(unix_ms);
    e->set_text(text);
  }

  std::mutex mu;
  google::protobuf::RepeatedPtrField<v1::StoredEvent> events;
  std::vector<v1::ListEventsRequest> requests;
  int campaign_reads = 0;
  bool finish_on_second_look = false;
};

class EventsCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // HH:MM:SS is local time: pin the zone so the expected lines hold anywhere.
    const char* tz = getenv("TZ");
    saved_tz_ = tz == nullptr ? "" : tz;
    had_tz_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
    for (int i = 1; i <= 7; ++i) fake_.Add(3'600'000 + i * 1000, "event " + std::to_string(i));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    if (had_tz_) {
      setenv("TZ", saved_tz_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

  int Run(std::vector<std::string> args, const std::string& address = "") {
    args.insert(args.begin(), "events");
    args.push_back("--coordinator=" + (address.empty() ? address_ : address));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    out_.str("");
    err_.str("");
    return RunResearchCommand(static_cast<int>(argv.size()), argv.data(), out_, err_);
  }

  std::vector<std::string> OutLines() {
    std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
    return lines;
  }

  EventsCoordinator fake_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::ostringstream out_, err_;
  std::string saved_tz_;
  bool had_tz_ = false;
};

TEST_F(EventsCommandTest, PrintsEveryEventWithItsLocalTimePagingToTheEnd) {
  ASSERT_EQ(Run({"7"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "01:00:01  event 1\n01:00:02  event 2\n01:00:03  event 3\n01:00:04  event 4\n"
            "01:00:05  event 5\n01:00:06  event 6\n01:00:07  event 7\n");
  EXPECT_EQ(err_.str(), "");
  // Pages of three, each after the last seq printed, until an empty one.
  ASSERT_EQ(fake_.requests.size(), 4u);
  EXPECT_EQ(fake_.requests[0].after_seq(), 0);
  EXPECT_EQ(fake_.requests[1].after_seq(), 30);
  EXPECT_EQ(fake_.requests[2].after_seq(), 60);
  EXPECT_EQ(fake_.requests[3].after_seq(), 70);
}

TEST_F(EventsCommandTest, AfterAndLimitSelectAWindow) {
  ASSERT_EQ(Run({"7", "--after=20", "--limit=4"}), kExitOk) << err_.str();
  EXPECT_EQ(OutLines(), (std::vector<std::string>{"01:00:03  event 3", "01:00:04  event 4",
                                                  "01:00:05  event 5", "01:00:06  event 6"}));
  ASSERT_EQ(fake_.requests.size(), 2u);
  EXPECT_EQ(fake_.requests[0].after_seq(), 20);
  EXPECT_EQ(fake_.requests[1].limit(), 1) << "asks only for what is left";
  ASSERT_EQ(Run({"7", "--after=70"}), kExitOk);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(EventsCommandTest, JsonIsOneObjectPerEvent) {
  ASSERT_EQ(Run({"7", "--json", "--limit=2"}), kExitOk) << err_.str();
  const std::vector<std::string> lines = OutLines();
  ASSERT_EQ(lines.size(), 2u);
  const nlohmann::json first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["seq"], 10);
  EXPECT_EQ(first["unix_ms"], 3'601'000);
  EXPECT_EQ(first["text"], "event 1");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["text"], "event 2");
}

TEST_F(EventsCommandTest, ControlCharactersNeverReachTheTerminal) {
  fake_.Add(3'700'000, "name\x1b]0;title\x07\nrm -rf /");
  ASSERT_EQ(Run({"7", "--after=70"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "01:01:40  name ]0;title  rm -rf /\n");
}

TEST_F(EventsCommandTest, FollowPollsUntilTheCampaignHasEnded) {
  fake_.finish_on_second_look = true;
  ASSERT_EQ(Run({"7", "--follow", "--after=60"}), kExitOk) << err_.str();
  EXPECT_EQ(OutLines(), (std::vector<std::string>{"01:00:07  event 7",
                                                  "02:30:00  campaign finished"}));
  EXPECT_EQ(fake_.campaign_reads, 3) << "running, ended, one more look";
}

TEST_F(EventsCommandTest, FollowOfAnEndedCampaignPrintsItsEventsAndStops) {
  ASSERT_EQ(Run({"7", "--follow", "--after=50"}), kExitOk) << err_.str();
  EXPECT_EQ(OutLines().size(), 2u);
  EXPECT_EQ(fake_.campaign_reads, 1);
}

TEST_F(EventsCommandTest, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{}, {"abc"}, {"0"}, {"-3"}, {"7", "8"},
                                             {"7", "--limit=-1"}, {"7", "--after=x"},
                                             {"7", "--bogus"}}) {
    EXPECT_EQ(Run(args), kExitUsage) << ::testing::PrintToString(args);
    EXPECT_NE(err_.str().find("usage: ratchet"), std::string::npos) << err_.str();
    EXPECT_EQ(out_.str(), "");
  }
  EXPECT_TRUE(fake_.requests.empty());
}

TEST_F(EventsCommandTest, AnUnknownCampaignExitsOne) {
  EXPECT_EQ(Run({"99"}), kExitFailure);
  EXPECT_NE(err_.str().find("NOT_FOUND"), std::string::npos) << err_.str();
  EXPECT_EQ(out_.str(), "");
}

TEST_F(EventsCommandTest, AnUnreachableCoordinatorExitsOne) {
  // A port that nothing listens on any more.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  const std::string dead = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  EXPECT_EQ(Run({"7"}, dead), kExitFailure);
  EXPECT_NE(err_.str().find("cannot reach coordinator at " + dead), std::string::npos)
      << err_.str();
}

// `ratchet import` needs no coordinator: usage errors exit 2, a bad file 1
// with the validator's message, a good one writes the folder.
int RunImport(std::vector<std::string> args, std::ostream& out, std::ostream& err) {
  args.insert(args.begin(), "import");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return RunImportCommand(static_cast<int>(argv.size()), argv.data(), out, err);
}

TEST(ImportCommand, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{}, {"a.json"}, {"a.json", "b", "c"},
                                             {"a.json", "b", "--bogus"}}) {
    std::ostringstream out, err;
    EXPECT_EQ(RunImport(args, out, err), kExitUsage) << ::testing::PrintToString(args);
    EXPECT_NE(err.str().find("usage: ratchet import"), std::string::npos) << err.str();
  }
}

TEST(ImportCommand, BadFileExitsOneAndGoodFileImports) {
  std::string tmpl = (fs::temp_directory_path() / "ratchet-import.XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path dir(tmpl);
  std::ofstream(dir / "bad.json") << R"({"name": "x", "definition": "d", "author": "a",
    "spec": {"languages": ["pytorch"], "target_hardware": ["LOCAL"], "entry_point": "k.py::a::b"},
    "sources": [{"path": "k.py", "content": "def b(): pass"}]})";
  std::ostringstream out, err;
  EXPECT_EQ(RunImport({(dir / "bad.json").string(), (dir / "out").string()}, out, err), kExitFailure);
  EXPECT_NE(err.str().find("field 'spec.entry_point'"), std::string::npos) << err.str();
  EXPECT_EQ(RunImport({(dir / "missing.json").string(), (dir / "out").string()}, out, err),
            kExitFailure);
  std::ofstream(dir / "good.json") << R"({"name": "x", "definition": "d", "author": "a",
    "spec": {"languages": ["pytorch"], "target_hardware": ["LOCAL"], "entry_point": "k.py::run"},
    "sources": [{"path": "k.py", "content": "def run(): pass"}]})";
  EXPECT_EQ(RunImport({(dir / "good.json").string(), (dir / "out").string()}, out, err), kExitOk)
      << err.str();
  EXPECT_EQ(Read(dir / "out" / "k.py"), "def run(): pass");
  EXPECT_TRUE(fs::exists(dir / "out" / "solution.json"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ratchet::cli
