// What operators watch (docs/operations.md, "Metrics"): a real coordinator,
// verifier and worker, each with --metrics on a free port; the test makes
// RPCs, scrapes /metrics over HTTP and asks the coordinator's gRPC health
// and reflection services, as grpc_health_probe and grpcurl would.
#include <chrono>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace ratchet {
namespace {

using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;
using testing::Cluster;

const std::string kRatchet = RATCHET_BIN;
constexpr int kPollMs = 60'000;  // generous: the machine may be busy

const std::vector<std::string> kServices = {"ratchet.v1.CoordinatorService",
                                            "ratchet.v1.WorkerService",
                                            "ratchet.v1.VerifierService"};

// One sample of a /metrics page: "name{label="value",...} number".
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Sample> ParseMetrics(const std::string& page) {
  std::vector<Sample> samples;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos ||
        !absl::SimpleAtod(line.substr(space + 1), &s.value))
      continue;
    absl::string_view series = line.substr(0, space);
    const size_t brace = series.find('{');
    s.name = std::string(series.substr(0, brace));
    if (brace != absl::string_view::npos) {
      absl::string_view labels = series.substr(brace + 1);
      absl::ConsumeSuffix(&labels, "}");
      // Our label values hold no quotes or commas.
      for (absl::string_view pair : absl::StrSplit(labels, "\",", absl::SkipEmpty())) {
        const size_t eq = pair.find("=\"");
        if (eq == absl::string_view::npos) continue;
        absl::string_view value = pair.substr(eq + 2);
        absl::ConsumeSuffix(&value, "\"");
        s.labels[std::string(pair.substr(0, eq))] = std::string(value);
      }
    }
    samples.push_back(std::move(s));
  }
  return samples;
}

// The value of the first sample of `name` whose labels include `labels`.
std::optional<double> Find(const std::string& page, const std::string& name,
                           const std::map<std::string, std::string>& labels = {}) {
  for (const Sample& s : ParseMetrics(page)) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (match) return s.value;
  }
  return std::nullopt;
}

double Sum(const std::string& page, const std::string& name) {
  double sum = 0;
  for (const Sample& s : ParseMetrics(page))
    if (s.name == name) sum += s.value;
  return sum;
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

// Protobuf wire format by hand: the test needs two fields of grpc's health
// and reflection messages, whose generated classes are not installed.
std::string LengthDelimited(int field, const std::string& bytes) {
  std::string out(1, static_cast<char>(field << 3 | 2));
  for (size_t n = bytes.size();; n >>= 7) {
    out.push_back(static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
    if (n <= 0x7f) break;
  }
  return out + bytes;
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// Waits for the completion queue's next event; whether it succeeded.
bool Await(grpc::CompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  return cq->Next(&tag, &ok) && ok;
}

// grpc.health.v1.Health/Check for `service`: the ServingStatus (1 SERVING,
// 2 NOT_SERVING, 3 SERVICE_UNKNOWN), or -1 with the call's status.
int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                grpc::Status* status) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  auto ctx = Ctx();
  // HealthCheckRequest { string service = 1; }
  const grpc::ByteBuffer request = ToBuffer(LengthDelimited(1, service));
  auto call = stub.PrepareUnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  call->Finish(&response, status, nullptr);
  Await(&cq);
  if (!status->ok()) return -1;
  // HealthCheckResponse { ServingStatus status = 1; } (absent: 0, UNKNOWN)
  UnknownFieldSet fields;
  if (!fields.ParseFromString(FromBuffer(response))) return -1;
  for (int i = 0; i < fields.field_count(); ++i)
    if (fields.field(i).number() == 1 && fields.field(i).type() == UnknownField::TYPE_VARINT)
      return static_cast<int>(fields.field(i).varint());
  return 0;
}

// The services grpc.reflection.v1alpha.ServerReflection lists.
std::set<std::string> ReflectedServices(const std::shared_ptr<grpc::Channel>& channel,
                                        grpc::Status* status) {
  std::set<std::string> names;
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  auto ctx = Ctx();
  auto call = stub.PrepareCall(
      ctx.get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(nullptr);
  if (!Await(&cq)) return names;
  // ServerReflectionRequest { oneof { string list_services = 7; } }
  call->Write(ToBuffer(LengthDelimited(7, "")), nullptr);
  if (!Await(&cq)) return names;
  grpc::ByteBuffer response;
  call->Read(&response, nullptr);
  const bool read = Await(&cq);
  call->WritesDone(nullptr);
  Await(&cq);
  call->Finish(status, nullptr);
  Await(&cq);
  if (!read) return names;
  // ServerReflectionResponse { ListServiceResponse list_services_response = 6; }
  // ListServiceResponse { repeated ServiceResponse service = 1; }
  // ServiceResponse { string name = 1; }
  UnknownFieldSet top;
  if (!top.ParseFromString(FromBuffer(response))) return names;
  for (int i = 0; i < top.field_count(); ++i) {
    if (top.field(i).number() != 6 || top.field(i).type() != UnknownField::TYPE_LENGTH_DELIMITED)
      continue;
    UnknownFieldSet list;
    if (!list.ParseFromString(top.field(i).length_delimited())) continue;
    for (int j = 0; j < list.field_count(); ++j) {
      if (list.field(j).number() != 1) continue;
      UnknownFieldSet service;
      if (!service.ParseFromString(list.field(j).length_delimited())) continue;
      for (int k = 0; k < service.field_count(); ++k)
        if (service.field(k).number() == 1) names.insert(service.field(k).length_delimited());
    }
  }
  return names;
}

v1::CampaignSpec SleepSpec(const std::string& name, int evaluations) {
  v1::CampaignSpec spec;
  spec.set_name(name);
  spec.set_task(v1::TASK_SLEEP);
  spec.set_sleep_ms(10);
  spec.mutable_budget()->set_max_evaluations(evaluations);
  return spec;
}

class Observability : public ::testing::Test {
 protected:
  void SetUp() override {
    Cluster::Options options;
    options.metrics = true;
    options.worker_flags = {"--no-gpu"};
    for (const auto& f : testing::UnreachablePeakFlags()) options.worker_flags.push_back(f);
    cluster_ = std::make_unique<Cluster>(kRatchet, testing::MakeTempDir("ratchet-observability"),
                                         options);
  }

  // The service's /metrics page once `ready` holds on it; the last page
  // (and a test failure) after kPollMs.
  std::string ScrapeUntil(const std::string& service,
                          const std::function<bool(const std::string&)>& ready) {
    std::string page;
    const bool ok = testing::PollUntil(
        [&] {
          page = cluster_->Metrics(service);
          return !page.empty() && ready(page);
        },
        kPollMs);
    EXPECT_TRUE(ok) << service << "'s /metrics never got there; last page:\n"
                    << page << "\n"
                    << cluster_->Logs();
    return page;
  }

  std::unique_ptr<Cluster> cluster_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Every process says which build it runs and how it fares (process_*).
void ExpectBuildAndProcess(const std::string& page, const std::string& service) {
  const auto build = Find(page, "ratchet_build_info", {{"service", service}});
  ASSERT_TRUE(build.has_value()) << service << ":\n" << page;
  EXPECT_EQ(*build, 1);
  for (const Sample& s : ParseMetrics(page)) {
    if (s.name != "ratchet_build_info") continue;
    EXPECT_FALSE(s.labels.at("version").empty());
    EXPECT_FALSE(s.labels.at("commit").empty());
  }
  for (const char* name :
       {"process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
        "process_start_time_seconds", "process_threads"})
    EXPECT_TRUE(Find(page, name).has_value()) << service << " has no " << name;
  EXPECT_GT(Find(page, "process_resident_memory_bytes").value_or(0), 0);
  EXPECT_GE(Find(page, "process_virtual_memory_bytes").value_or(0),
            Find(page, "process_resident_memory_bytes").value_or(1));
  EXPECT_GE(Find(page, "process_cpu_seconds_total").value_or(-1), 0);
  EXPECT_GE(Find(page, "process_threads").value_or(0), 1);
  EXPECT_GE(Find(page, "process_open_fds").value_or(0), 3);
  EXPECT_GE(Find(page, "process_max_fds").value_or(0), Find(page, "process_open_fds").value_or(1));
  const double now = static_cast<double>(std::time(nullptr));
  const double started = Find(page, "process_start_time_seconds").value_or(0);
  EXPECT_LE(started, now + 1);
  EXPECT_GT(started, now - 24 * 3600) << "started over a day ago?";
}

TEST_F(Observability, CoordinatorCountsRpcsAndAnswersHealthAndReflection) {
  ASSERT_NO_FATAL_FAILURE(cluster_->StartCoordinator());
  channel_ = grpc::CreateChannel(cluster_->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::CoordinatorService::NewStub(channel_);

  // Two that succeed, two that fail with codes of their own.
  for (int i = 0; i < 2; ++i) {
    v1::ListCampaignsResponse list;
    ASSERT_TRUE(stub->ListCampaigns(Ctx().get(), v1::ListCampaignsRequest(), &list).ok());
  }
  v1::GetCampaignRequest missing;
  missing.set_campaign_id(987654321);
  v1::Campaign campaign;
  EXPECT_EQ(stub->GetCampaign(Ctx().get(), missing, &campaign).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::SubmitCampaignRequest absurd;  // no task, no budget
  EXPECT_EQ(stub->SubmitCampaign(Ctx().get(), absurd, &campaign).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A stream counts when it ends: watch a campaign until it is cancelled.
  v1::SubmitCampaignRequest submit;
  *submit.mutable_spec() = SleepSpec("watched", 3);
  ASSERT_TRUE(stub->SubmitCampaign(Ctx().get(), submit, &campaign).ok());
  {
    v1::WatchCampaignRequest watch;
    watch.set_campaign_id(campaign.id());
    auto ctx = Ctx();
    auto reader = stub->WatchCampaign(ctx.get(), watch);
    v1::CampaignEvent event;
    ASSERT_TRUE(reader->Read(&event));  // the stream is open
    v1::CancelCampaignRequest cancel;
    cancel.set_campaign_id(campaign.id());
    v1::Campaign cancelled;
    ASSERT_TRUE(stub->CancelCampaign(Ctx().get(), cancel, &cancelled).ok());
    while (reader->Read(&event)) {
    }
    EXPECT_TRUE(reader->Finish().ok());
  }

  // A method the server does not have is refused, under no label of its own.
  {
    grpc::GenericStub generic(channel_);
    grpc::CompletionQueue cq;
    auto ctx = Ctx();
    auto call = generic.PrepareUnaryCall(ctx.get(), "/ratchet.v1.Forged/SeriesPerName",
                                         ToBuffer(""), &cq);
    call->StartCall();
    grpc::ByteBuffer response;
    grpc::Status status;
    call->Finish(&response, &status, nullptr);
    Await(&cq);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }

  auto handled = [](const std::string& page, const std::string& method, const char* code) {
    return Find(page, "ratchet_grpc_server_handled_total",
                {{"method", "/ratchet.v1.CoordinatorService/" + method}, {"code", code}})
        .value_or(0);
  };
  const std::string page = ScrapeUntil("coordinator", [&](const std::string& p) {
    return handled(p, "WatchCampaign", "OK") >= 1;
  });
  EXPECT_EQ(handled(page, "ListCampaigns", "OK"), 2) << page;
  EXPECT_EQ(handled(page, "GetCampaign", "NOT_FOUND"), 1) << page;
  EXPECT_EQ(handled(page, "SubmitCampaign", "INVALID_ARGUMENT"), 1) << page;
  EXPECT_EQ(handled(page, "SubmitCampaign", "OK"), 1) << page;
  EXPECT_EQ(handled(page, "CancelCampaign", "OK"), 1) << page;
  EXPECT_EQ(handled(page, "WatchCampaign", "OK"), 1) << page;
  EXPECT_EQ(Find(page, "ratchet_grpc_server_handling_seconds_count",
                 {{"method", "/ratchet.v1.CoordinatorService/ListCampaigns"}})
                .value_or(0),
            2)
      << page;
  EXPECT_EQ(page.find("Forged"), std::string::npos) << "a client's method name became a label";
  EXPECT_EQ(Find(page, "ratchet_grpc_server_handled_total",
                 {{"method", "unknown"}, {"code", "UNIMPLEMENTED"}})
                .value_or(0),
            1)
      << page;
  for (const Sample& s : ParseMetrics(page)) {
    if (s.name != "ratchet_grpc_server_handled_total") continue;
    const std::string& method = s.labels.at("method");
    EXPECT_TRUE(method == "unknown" || method.rfind("/ratchet.v1.", 0) == 0 ||
                method.rfind("/grpc.", 0) == 0)
        << method;
  }
  ExpectBuildAndProcess(page, "coordinator");

  // Health: the server and each of its services.
  grpc::Status status;
  EXPECT_EQ(HealthCheck(channel_, "", &status), 1) << status.error_message();
  for (const std::string& service : kServices)
    EXPECT_EQ(HealthCheck(channel_, service, &status), 1)
        << service << ": " << status.error_message();
  EXPECT_EQ(HealthCheck(channel_, "ratchet.v1.NoSuchService", &status), -1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  // Reflection lists the three services (and itself, and health).
  const std::set<std::string> reflected = ReflectedServices(channel_, &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
  for (const std::string& service : kServices)
    EXPECT_EQ(reflected.count(service), 1u) << service << " not listed by reflection";
}

TEST_F(Observability, EveryServiceExportsBuildProcessAndDeviceMetrics) {
  ASSERT_NO_FATAL_FAILURE(cluster_->Start(/*workers=*/1));
  ExpectBuildAndProcess(ScrapeUntil("verifier", [](const std::string& p) {
                          return Find(p, "ratchet_build_info").has_value();
                        }),
                        "verifier");
  // The worker runs one job (a sleep job: its harness run fails at once, but
  // the harness ran) so that its device was busy for a while.
  auto stub = v1::CoordinatorService::NewStub(
      grpc::CreateChannel(cluster_->address(), grpc::InsecureChannelCredentials()));
  v1::SubmitCampaignRequest submit;
  *submit.mutable_spec() = SleepSpec("busy", 1);
  v1::Campaign campaign;
  ASSERT_TRUE(stub->SubmitCampaign(Ctx().get(), submit, &campaign).ok());
  const std::string worker = ScrapeUntil("w1", [](const std::string& p) {
    return Sum(p, "ratchet_worker_jobs_total") >= 1;
  });
  ExpectBuildAndProcess(worker, "worker");
  EXPECT_GT(Find(worker, "ratchet_worker_device_busy_seconds_total", {{"device", "cpu"}})
                .value_or(0),
            0)
      << worker;

  // The worker's calls show up on the coordinator under WorkerService.
  const std::string coordinator = ScrapeUntil("coordinator", [](const std::string& p) {
    return Find(p, "ratchet_grpc_server_handled_total",
                {{"method", "/ratchet.v1.WorkerService/CompleteJob"}, {"code", "OK"}})
               .value_or(0) >= 1;
  });
  EXPECT_GE(Find(coordinator, "ratchet_grpc_server_handled_total",
                 {{"method", "/ratchet.v1.WorkerService/RegisterWorker"}, {"code", "OK"}})
                .value_or(0),
            1);
}

}  // namespace
}  // namespace ratchet
