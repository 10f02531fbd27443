#include "tests/support/scripted_openai_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace ratchet::testing {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

void SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the client went away (e.g. it timed out)
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

ScriptedResponse ScriptedResponse::Answer(const std::string& content, int prompt_tokens,
                                          int completion_tokens,
                                          const std::string& finish_reason) {
  nlohmann::json body = {
      {"id", "chatcmpl-scripted"},
      {"object", "chat.completion"},
      {"model", "scripted"},
      {"choices",
       {{{"index", 0},
         {"message", {{"role", "assistant"}, {"content", content}}},
         {"finish_reason", finish_reason}}}},
      {"usage",
       {{"prompt_tokens", prompt_tokens},
        {"completion_tokens", completion_tokens},
        {"total_tokens", prompt_tokens + completion_tokens}}}};
  ScriptedResponse r;
  r.body = body.dump();
  return r;
}

ScriptedResponse ScriptedResponse::Error(int status, const std::string& message,
                                         int retry_after_seconds) {
  ScriptedResponse r;
  r.status = status;
  r.body = nlohmann::json({{"error", {{"message", message}, {"type", "scripted"}}}}).dump();
  if (retry_after_seconds >= 0) r.headers.push_back({"Retry-After", std::to_string(retry_after_seconds)});
  return r;
}

ScriptedResponse ScriptedResponse::Hang(int ms) {
  ScriptedResponse r = Answer("IDEA: too late\n");
  r.hang_ms = ms;
  return r;
}

ScriptedOpenAiServer::ScriptedOpenAiServer(std::vector<ScriptedResponse> script,
                                           Fallback fallback)
    : script_(std::move(script)), fallback_(std::move(fallback)) {}

ScriptedOpenAiServer::~ScriptedOpenAiServer() { Stop(); }

bool ScriptedOpenAiServer::Start(std::string* error) {
  auto fail = [&](const char* what) {
    if (error != nullptr) *error = absl::StrCat(what, ": ", std::strerror(errno));
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    return false;
  };
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return fail("socket");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return fail("bind");
  if (::listen(listen_fd_, 64) != 0) return fail("listen");
  socklen_t len = sizeof(addr);
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return fail("getsockname");
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void ScriptedOpenAiServer::Stop() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connections.swap(connections_);
  }
  for (auto& t : connections) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

std::string ScriptedOpenAiServer::base_url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

std::vector<RecordedRequest> ScriptedOpenAiServer::requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void ScriptedOpenAiServer::AcceptLoop() {
  while (!stopping_) {
    pollfd p = {listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    connections_.emplace_back([this, fd] {
      Serve(fd);
      ::close(fd);
    });
  }
}

ScriptedResponse ScriptedOpenAiServer::Next(RecordedRequest* request) {
  std::lock_guard<std::mutex> lock(mu_);
  ScriptedResponse response;
  if (next_ < script_.size()) {
    request->response_index = static_cast<int>(next_);
    response = script_[next_++];
  } else if (fallback_) {
    response = fallback_(*request);
  } else {
    response = ScriptedResponse::Error(500, "the script is used up");
  }
  requests_.push_back(*request);
  return response;
}

void ScriptedOpenAiServer::Serve(int fd) {
  // Read the head, then Content-Length bytes of body; give up when the
  // server stops or the client goes quiet for 10 s.
  std::string data;
  size_t head_end = std::string::npos;
  size_t content_length = 0;
  RecordedRequest request;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  char buf[8192];
  while (!stopping_ && std::chrono::steady_clock::now() < deadline) {
    if (head_end != std::string::npos && data.size() >= head_end + 4 + content_length) break;
    pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    data.append(buf, static_cast<size_t>(n));
    if (head_end == std::string::npos) {
      head_end = data.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      std::vector<std::string> lines = absl::StrSplit(data.substr(0, head_end), "\r\n");
      std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
      if (first.size() >= 2) {
        request.method = first[0];
        request.path = first[1];
      }
      for (size_t i = 1; i < lines.size(); ++i) {
        size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
        request.headers[name] = std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      }
      auto cl = request.headers.find("content-length");
      if (cl != request.headers.end()) (void)absl::SimpleAtoi(cl->second, &content_length);
      auto expect = request.headers.find("expect");
      if (expect != request.headers.end() && absl::AsciiStrToLower(expect->second) == "100-continue")
        SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    }
  }
  if (head_end == std::string::npos || data.size() < head_end + 4 + content_length) return;
  request.body = data.substr(head_end + 4, content_length);
  request.unix_ms = NowMs();
  ScriptedResponse response = Next(&request);
  if (response.hang_ms > 0) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(response.hang_ms);
    while (!stopping_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (stopping_) return;
  }
  std::string head = absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                                  "\r\nContent-Type: application/json\r\nContent-Length: ",
                                  response.body.size(), "\r\nConnection: close\r\n");
  for (const auto& [name, value] : response.headers) absl::StrAppend(&head, name, ": ", value, "\r\n");
  absl::StrAppend(&head, "\r\n");
  SendAll(fd, head + response.body);
}

}  // namespace ratchet::testing
