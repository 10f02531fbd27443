// A tiny OpenAI-compatible HTTP/1.1 server on loopback for tests: it answers
// each request with the next response of a script (a good answer, a malformed
// one, a 429 with Retry-After, a 500, a hang past the client's timeout, ...)
// and records every request it received. Plain POSIX sockets, one thread per
// connection; it speaks just enough HTTP for libcurl.
#ifndef RATCHET_TESTS_SUPPORT_SCRIPTED_OPENAI_SERVER_H_
#define RATCHET_TESTS_SUPPORT_SCRIPTED_OPENAI_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ratchet::testing {

struct ScriptedResponse {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int hang_ms = 0;  // wait this long before answering (a client timeout)

  // A chat completion whose message content is `content`.
  static ScriptedResponse Answer(const std::string& content, int prompt_tokens = 1000,
                                 int completion_tokens = 200,
                                 const std::string& finish_reason = "stop");
  // An error status with an OpenAI-style error body; Retry-After if >= 0.
  static ScriptedResponse Error(int status, const std::string& message,
                                int retry_after_seconds = -1);
  // Answers only after `ms` (with a valid completion, which nobody reads).
  static ScriptedResponse Hang(int ms);
};

struct RecordedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int64_t unix_ms = 0;
  int response_index = -1;  // which scripted response it got; -1 = after the script
};

class ScriptedOpenAiServer {
 public:
  using Fallback = std::function<ScriptedResponse(const RecordedRequest&)>;

  // After the script is used up, `fallback` answers (a 500 if none).
  explicit ScriptedOpenAiServer(std::vector<ScriptedResponse> script, Fallback fallback = nullptr);
  ~ScriptedOpenAiServer();
  ScriptedOpenAiServer(const ScriptedOpenAiServer&) = delete;
  ScriptedOpenAiServer& operator=(const ScriptedOpenAiServer&) = delete;

  // Listens on 127.0.0.1 at a free port; false (with errno's text in
  // *error) if that fails.
  bool Start(std::string* error = nullptr);
  void Stop();

  int port() const { return port_; }
  std::string base_url() const;
  std::vector<RecordedRequest> requests();

 private:
  void AcceptLoop();
  void Serve(int fd);
  ScriptedResponse Next(RecordedRequest* request);

  std::vector<ScriptedResponse> script_;
  Fallback fallback_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  size_t next_ = 0;
  std::vector<RecordedRequest> requests_;
  std::vector<std::thread> connections_;
};

}  // namespace ratchet::testing

#endif  // RATCHET_TESTS_SUPPORT_SCRIPTED_OPENAI_SERVER_H_
