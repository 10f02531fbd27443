// throwaway test driver: driver SO mode dims... reps
#include <ratchet/kernel_abi.h>
#include <dlfcn.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
#include <algorithm>
struct T { std::vector<float> d; std::vector<int64_t> shape, strides; ratchet_tensor t; };
static void mk(T& x, std::vector<int64_t> shape) {
  x.shape = shape; int64_t n = 1; for (auto s : shape) n *= s; x.d.assign(n + 64, 0.f);
  x.strides.assign(shape.size(), 1);
  for (int i = (int)shape.size() - 2; i >= 0; --i) x.strides[i] = x.strides[i + 1] * shape[i + 1];
  x.t.data = x.d.data(); x.t.dtype = RATCHET_FLOAT32; x.t.ndim = shape.size();
  x.t.shape = x.shape.data(); x.t.strides = x.strides.data();
}
static std::vector<char> flushbuf(64 << 20);
int main(int argc, char** argv) {
  void* h = dlopen(argv[1], RTLD_NOW); if (!h) { printf("dlopen %s\n", dlerror()); return 1; }
  auto fn = (ratchet_run_fn)dlsym(h, "ratchet_run");
  std::string mode = argv[2]; int reps = atoi(argv[3]);
  std::mt19937 rng(1); std::normal_distribution<float> nd;
  double total_ms = 0, total_min = 0; bool ok_all = true;
  for (int w = 4; w < argc; ) {
    std::vector<T> in, out; std::vector<double> ref; int nin;
    std::string label;
    if (mode == "matmul") {
      int64_t M = atol(argv[w]), N = atol(argv[w+1]), K = atol(argv[w+2]); w += 3;
      in.resize(2); out.resize(1); mk(in[0], {M, K}); mk(in[1], {K, N}); mk(out[0], {M, N});
      for (auto& v : in[0].d) v = nd(rng); for (auto& v : in[1].d) v = nd(rng);
      ref.assign(M * N, 0);
      for (int64_t i = 0; i < M; ++i) for (int64_t j = 0; j < N; ++j) { double s = 0;
        for (int64_t k = 0; k < K; ++k) s += (double)in[0].d[i*K+k] * in[1].d[k*N+j]; ref[i*N+j] = s; }
      label = std::to_string(M)+"x"+std::to_string(N)+"x"+std::to_string(K);
    } else if (mode == "rmsnorm") {
      int64_t R = atol(argv[w]), H = atol(argv[w+1]); w += 2;
      in.resize(3); out.resize(1); mk(in[0], {R, H}); mk(in[1], {H}); mk(in[2], {}); mk(out[0], {R, H});
      for (auto& v : in[0].d) v = nd(rng); for (auto& v : in[1].d) v = nd(rng); in[2].d[0] = 1e-5f;
      ref.assign(R * H, 0);
      for (int64_t r = 0; r < R; ++r) { double s = 0; for (int64_t j = 0; j < H; ++j) s += (double)in[0].d[r*H+j]*in[0].d[r*H+j];
        double rs = 1.0 / std::sqrt(s / H + 1e-5); for (int64_t j = 0; j < H; ++j) ref[r*H+j] = in[0].d[r*H+j]*rs*in[1].d[j]; }
      label = std::to_string(R)+"x"+std::to_string(H);
    } else { // vadd
      int64_t n = atol(argv[w]); w += 1;
      in.resize(2); out.resize(1); mk(in[0], {n}); mk(in[1], {n}); mk(out[0], {n});
      for (auto& v : in[0].d) v = nd(rng); for (auto& v : in[1].d) v = nd(rng);
      ref.resize(n); for (int64_t i = 0; i < n; ++i) ref[i] = (double)in[0].d[i] + in[1].d[i];
      label = std::to_string(n);
    }
    std::vector<ratchet_tensor> ti, to; for (auto& x : in) ti.push_back(x.t); for (auto& x : out) to.push_back(x.t);
    for (auto& v : out[0].d) v = NAN;
    int rc = fn(ti.data(), ti.size(), to.data(), to.size());
    double maxerr = 0; int64_t bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) { double e = std::fabs(out[0].d[i] - ref[i]);
      if (!(e <= 1e-3 + 1e-3 * std::fabs(ref[i]))) ++bad; if (!(e <= maxerr)) maxerr = e; }
    for (size_t i = ref.size(); i < out[0].d.size(); ++i) if (out[0].d[i] == out[0].d[i]) ++bad; // tail must remain NaN
    bool ok = rc == 0 && bad == 0; ok_all &= ok;
    std::vector<double> ts;
    for (int r = 0; r < reps; ++r) {
      memset(flushbuf.data(), r, flushbuf.size());
      auto t0 = std::chrono::steady_clock::now();
      fn(ti.data(), ti.size(), to.data(), to.size());
      ts.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ts.begin(), ts.end()); double med = reps ? ts[reps / 2] : 0; double mn = reps ? ts[0] : 0; total_ms += med; total_min += mn;
    printf("  %-12s %s maxerr=%.2e median=%.3f min=%.3f ms\n", label.c_str(), ok ? "OK " : "BAD", maxerr, med, mn);
  }
  printf("  TOTAL median sum %.3f ms  min sum %.3f ms %s\n", total_ms, total_min, ok_all ? "ALL_OK" : "FAIL");
  return ok_all ? 0 : 2;
}
