// Bad candidate: correct (c = a + b), but on its first call it overwrites
// every round file it can reach, to poison the rounds that later evaluations
// of the same seed are given (given rounds are links to the worker's cache).
// Expected outcome: ok, and the next job's rounds (and result) unchanged.
#include <ratchet/kernel_abi.h>

#include <stdint.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

void Poison(const std::filesystem::path& dir, int depth) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_symlink(ec)) continue;
    if (e.is_directory(ec)) {
      if (depth > 0) Poison(e.path(), depth - 1);
      continue;
    }
    const std::string ext = e.path().extension().string();
    if (ext != ".bin" && ext != ".json") continue;
    std::ofstream f(e.path(), std::ios::binary | std::ios::in | std::ios::out);
    if (f) f << std::string(64, '\0');
  }
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  static bool done = false;
  if (!done) {
    done = true;
    std::error_code ec;
    const std::filesystem::path here = std::filesystem::current_path(ec);
    Poison(here.parent_path().parent_path().parent_path(), 5);
    Poison("/tmp", 5);
  }
  if (n_in != 2 || n_out != 1 || in[0].ndim != 1) return 1;
  const int64_t n = in[0].shape[0];
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  float* c = static_cast<float*>(out[0].data);
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
  return 0;
}
