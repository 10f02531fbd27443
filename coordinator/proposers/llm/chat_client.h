// A client for OpenAI-compatible chat completions
// (`POST {base_url}/v1/chat/completions`), as served by vLLM, llama.cpp's
// server, SGLang, Ollama and hosted APIs. Blocking; call it off the research
// loop. Transient failures (429, 5xx, timeouts, refused or dropped
// connections) are retried with exponential backoff and jitter, waiting at
// least what a Retry-After header asks for.
#ifndef RATCHET_COORDINATOR_PROPOSERS_LLM_CHAT_CLIENT_H_
#define RATCHET_COORDINATOR_PROPOSERS_LLM_CHAT_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spec/defaults.h"

namespace ratchet::llm {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  // The spec's defaults (spec/defaults.h), for a request built without one.
  double temperature = spec::kDefaultLlmTemperature;
  int max_tokens = spec::kDefaultLlmMaxTokens;
};

struct ChatResponse {
  std::string content;        // choices[0].message.content
  std::string finish_reason;  // "stop", "length", ...
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool usage_reported = false;  // false: the server sent no "usage"
};

// What one Complete() call did on the wire, success or not.
struct CallStats {
  int attempts = 0;  // HTTP requests sent
  std::vector<std::string> retry_reasons;  // one per retried attempt, e.g. "HTTP 429"
};

struct ChatClientOptions {
  std::string base_url;  // "http://host:port"; a trailing "/v1" is accepted too
  std::string api_key;   // sent as "Authorization: Bearer ..."; "" = none
  double timeout_seconds = spec::kDefaultLlmTimeoutSeconds;  // one HTTP request, connect included
  int max_retries = spec::kDefaultLlmMaxRetries;  // retries after the first attempt
  double initial_backoff_seconds = 1.0;
  double max_backoff_seconds = 30.0;
  double max_retry_after_seconds = 120.0;  // a longer Retry-After is an error
};

// Bounds the requests in flight across every client that shares it (one per
// campaign), so a campaign with many threads cannot flood a small server.
class ConcurrencyLimit {
 public:
  explicit ConcurrencyLimit(int max_in_flight);
  // False if `cancelled` became true while waiting.
  bool Acquire(const std::atomic<bool>* cancelled);
  void Release();
  int in_flight() const;

 private:
  const int max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
};

class ChatClient {
 public:
  ChatClient(ChatClientOptions options, std::shared_ptr<ConcurrencyLimit> limit);

  // Errors carry the HTTP status and an excerpt of the body, e.g.
  // "HTTP 401 from http://...: {"error": ...}". Retries exhausted on a
  // transient failure give Unavailable (or DeadlineExceeded for timeouts);
  // other HTTP errors map to InvalidArgument / PermissionDenied / NotFound;
  // a 200 whose body is not a chat completion gives DataLoss; Cancelled if
  // `cancelled` became true.
  absl::StatusOr<ChatResponse> Complete(const ChatRequest& request,
                                        const std::atomic<bool>* cancelled = nullptr,
                                        CallStats* stats = nullptr);

  // The URL requests go to.
  const std::string& endpoint() const { return endpoint_; }

 private:
  ChatClientOptions options_;
  std::shared_ptr<ConcurrencyLimit> limit_;
  std::string endpoint_;
};

// Parses a chat-completions response body; exposed for tests.
absl::StatusOr<ChatResponse> ParseChatResponse(const std::string& body);

// Text that came from a model's server, made fit for the event log and a
// terminal: at most `max_bytes` bytes (cut at a character, "..." added),
// control characters (escape sequences, newlines, C1 controls) as spaces and
// bytes that are not UTF-8 as '?'.
std::string ForLog(const std::string& text, size_t max_bytes);

}  // namespace ratchet::llm

#endif  // RATCHET_COORDINATOR_PROPOSERS_LLM_CHAT_CLIENT_H_
