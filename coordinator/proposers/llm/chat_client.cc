#include "coordinator/proposers/llm/chat_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace ratchet::llm {
namespace {

constexpr size_t kExcerptBytes = 400;

void GlobalInit() {
  // curl_global_init is not thread-safe; every client goes through here.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A server's body in an error goes to the event log: bounded and cleaned.
std::string Excerpt(const std::string& body) { return ForLog(body, kExcerptBytes); }

bool Cancelled(const std::atomic<bool>* cancelled) {
  return cancelled != nullptr && cancelled->load();
}

// Sleeps in short slices so that cancellation is noticed; false if cancelled.
bool SleepFor(double seconds, const std::atomic<bool>* cancelled) {
  auto until = std::chrono::steady_clock::now() +
               std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  while (std::chrono::steady_clock::now() < until) {
    if (Cancelled(cancelled)) return false;
    auto left = until - std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        left, std::chrono::milliseconds(50)));
  }
  return !Cancelled(cancelled);
}

double Jitter() {
  // Jitter only spreads retries out; it needs no seed from the campaign.
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.5, 1.0)(rng);
}

struct Transfer {
  std::string body;
  double retry_after_seconds = -1;  // from a Retry-After header; -1 if none
  const std::atomic<bool>* cancelled = nullptr;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<Transfer*>(user)->body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::string_view line(data, size * n);
  constexpr absl::string_view kName = "retry-after:";
  if (line.size() > kName.size() &&
      absl::EqualsIgnoreCase(line.substr(0, kName.size()), kName)) {
    std::string value(absl::StripAsciiWhitespace(line.substr(kName.size())));
    double seconds;
    if (absl::SimpleAtod(value, &seconds) && seconds >= 0) {
      t->retry_after_seconds = seconds;
    } else {
      // An HTTP date: how far ahead of now it is.
      time_t at = curl_getdate(value.c_str(), nullptr);
      if (at > 0) t->retry_after_seconds = std::max<double>(0, at - std::time(nullptr));
    }
  }
  return size * n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return Cancelled(static_cast<Transfer*>(user)->cancelled) ? 1 : 0;
}

std::string NoProxyList() {
  // Local model servers must never go through a proxy from the environment.
  std::string list = "localhost,127.0.0.1,::1";
  for (const char* name : {"no_proxy", "NO_PROXY"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') {
      absl::StrAppend(&list, ",", v);
      break;
    }
  }
  return list;
}

absl::StatusCode CodeForHttp(long status) {
  if (status == 429) return absl::StatusCode::kResourceExhausted;
  if (status >= 500) return absl::StatusCode::kUnavailable;
  if (status == 401 || status == 403) return absl::StatusCode::kPermissionDenied;
  if (status == 404) return absl::StatusCode::kNotFound;
  if (status == 408) return absl::StatusCode::kDeadlineExceeded;
  if (status >= 400) return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kUnknown;
}

bool TransientHttp(long status) { return status == 408 || status == 429 || status >= 500; }

bool TransientCurl(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

}  // namespace

ConcurrencyLimit::ConcurrencyLimit(int max_in_flight) : max_(std::max(1, max_in_flight)) {}

bool ConcurrencyLimit::Acquire(const std::atomic<bool>* cancelled) {
  std::unique_lock<std::mutex> lock(mu_);
  while (in_flight_ >= max_) {
    if (Cancelled(cancelled)) return false;
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  ++in_flight_;
  return true;
}

void ConcurrencyLimit::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
  }
  cv_.notify_one();
}

int ConcurrencyLimit::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

ChatClient::ChatClient(ChatClientOptions options, std::shared_ptr<ConcurrencyLimit> limit)
    : options_(std::move(options)), limit_(std::move(limit)) {
  GlobalInit();
  if (limit_ == nullptr) limit_ = std::make_shared<ConcurrencyLimit>(1);
  std::string base(absl::StripSuffix(options_.base_url, "/"));
  endpoint_ = absl::EndsWith(base, "/v1") ? base + "/chat/completions"
                                          : base + "/v1/chat/completions";
}

std::string ForLog(const std::string& text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    // Decode one character; n = 0 if the bytes here are not UTF-8 (overlong
    // forms and surrogates included, which protobuf strings refuse).
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      if (i + k >= text.size() || (static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) {
        n = 0;
        break;
      }
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (n > 1 && (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) n = 0;
    std::string piece;
    if (n == 0) {
      piece = "?";
      n = 1;
    } else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || (cp >= 0x2028 && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069)) {
      piece = " ";  // C0 and C1 controls (newlines, ESC, CSI), line breaks, bidi overrides
    } else {
      piece = text.substr(i, n);
    }
    if (out.size() + piece.size() > max_bytes) return out + "...";
    out += piece;
    i += n;
  }
  return out;
}

absl::StatusOr<ChatResponse> ParseChatResponse(const std::string& body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return absl::DataLossError(absl::StrCat("response is not a JSON object: ", Excerpt(body)));
  if (doc.contains("error") && !doc.contains("choices"))
    return absl::DataLossError(absl::StrCat("server returned an error: ", Excerpt(body)));
  if (!doc.contains("choices") || !doc["choices"].is_array() || doc["choices"].empty())
    return absl::DataLossError(absl::StrCat("response has no choices: ", Excerpt(body)));
  const nlohmann::json& choice = doc["choices"][0];
  if (!choice.is_object() || !choice.contains("message") || !choice["message"].is_object())
    return absl::DataLossError(absl::StrCat("choices[0] has no message: ", Excerpt(body)));
  const nlohmann::json& message = choice["message"];
  if (!message.contains("content") || !message["content"].is_string())
    return absl::DataLossError(
        absl::StrCat("choices[0].message.content is not a string: ", Excerpt(body)));
  ChatResponse out;
  out.content = message["content"].get<std::string>();
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string())
    out.finish_reason = choice["finish_reason"].get<std::string>();
  if (doc.contains("usage") && doc["usage"].is_object()) {
    const nlohmann::json& usage = doc["usage"];
    if (usage.contains("prompt_tokens") && usage["prompt_tokens"].is_number_integer()) {
      out.prompt_tokens = usage["prompt_tokens"].get<int64_t>();
      out.usage_reported = true;
    }
    if (usage.contains("completion_tokens") && usage["completion_tokens"].is_number_integer())
      out.completion_tokens = usage["completion_tokens"].get<int64_t>();
  }
  return out;
}

absl::StatusOr<ChatResponse> ChatClient::Complete(const ChatRequest& request,
                                                  const std::atomic<bool>* cancelled,
                                                  CallStats* stats) {
  CallStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  nlohmann::json payload = {{"model", request.model},
                            {"temperature", request.temperature},
                            {"max_tokens", request.max_tokens},
                            {"stream", false}};
  payload["messages"] = nlohmann::json::array();
  for (const auto& m : request.messages)
    payload["messages"].push_back({{"role", m.role}, {"content", m.content}});
  const std::string body = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string no_proxy = NoProxyList();

  absl::Status last_error;
  for (int attempt = 0; attempt <= options_.max_retries; ++attempt) {
    if (!limit_->Acquire(cancelled)) return absl::CancelledError("request cancelled");
    Transfer transfer;
    transfer.cancelled = cancelled;
    CURL* curl = curl_easy_init();
    if (curl == nullptr) {
      limit_->Release();
      return absl::InternalError("curl_easy_init failed");
    }
    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    std::string auth;
    if (!options_.api_key.empty()) {
      auth = "Authorization: Bearer " + options_.api_key;
      headers = curl_slist_append(headers, auth.c_str());
    }
    const long timeout_ms = static_cast<long>(std::max(1.0, options_.timeout_seconds * 1000));
    curl_easy_setopt(curl, CURLOPT_URL, endpoint_.c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 10'000L));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // safe in threads
    curl_easy_setopt(curl, CURLOPT_NOPROXY, no_proxy.c_str());
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
    char curl_error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);

    ++stats->attempts;
    CURLcode code = curl_easy_perform(curl);
    long http_status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    limit_->Release();

    std::string retry_reason;
    double wait_at_least = 0;
    if (code == CURLE_ABORTED_BY_CALLBACK || Cancelled(cancelled))
      return absl::CancelledError("request cancelled");
    if (code != CURLE_OK) {
      const std::string what = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(code);
      last_error = absl::Status(
          code == CURLE_OPERATION_TIMEDOUT ? absl::StatusCode::kDeadlineExceeded
                                           : absl::StatusCode::kUnavailable,
          absl::StrCat(endpoint_, ": ", what));
      if (!TransientCurl(code)) return last_error;
      retry_reason = code == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connection: " + what;
    } else if (http_status != 200) {
      last_error = absl::Status(CodeForHttp(http_status),
                                absl::StrCat("HTTP ", http_status, " from ", endpoint_, ": ",
                                             Excerpt(transfer.body)));
      if (!TransientHttp(http_status)) return last_error;
      retry_reason = absl::StrCat("HTTP ", http_status);
      if (transfer.retry_after_seconds >= 0) {
        if (transfer.retry_after_seconds > options_.max_retry_after_seconds)
          return absl::Status(last_error.code(),
                              absl::StrCat(last_error.message(), " (Retry-After ",
                                           transfer.retry_after_seconds, " s is too long)"));
        wait_at_least = transfer.retry_after_seconds;
        absl::StrAppend(&retry_reason, absl::StrFormat(", Retry-After %gs",
                                                       transfer.retry_after_seconds));
      }
    } else {
      return ParseChatResponse(transfer.body);
    }

    if (attempt == options_.max_retries) break;
    stats->retry_reasons.push_back(retry_reason);
    const double backoff =
        std::min(options_.max_backoff_seconds,
                 options_.initial_backoff_seconds * std::pow(2.0, attempt)) *
        Jitter();
    if (!SleepFor(std::max(backoff, wait_at_least), cancelled))
      return absl::CancelledError("request cancelled");
  }
  return absl::Status(last_error.code(), absl::StrCat(last_error.message(), " (after ",
                                                      stats->attempts, " attempts)"));
}

}  // namespace ratchet::llm
