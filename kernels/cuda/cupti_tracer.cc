#include "kernels/cuda/cupti_tracer.h"

#include <cupti.h>

#include <cstdlib>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace ratchet::kernels {
namespace {

constexpr size_t kBufferBytes = 8 << 20;
constexpr size_t kAlign = 8;

std::mutex g_mu;
ActivityBatch* g_pending = nullptr;  // Guarded by g_mu.

absl::Status CuptiStatus(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return absl::OkStatus();
  const char* s = "unknown CUPTI error";
  cuptiGetResultString(r, &s);
  return absl::InternalError(absl::StrCat(what, ": ", s));
}

void CUPTIAPI BufferRequested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(kAlign, kBufferBytes));
  *size = *buffer != nullptr ? kBufferBytes : 0;
  *max_records = 0;  // As many as fit.
}

void CUPTIAPI BufferCompleted(CUcontext ctx, uint32_t stream_id, uint8_t* buffer, size_t size,
                              size_t valid_size) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_pending == nullptr) g_pending = new ActivityBatch();
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid_size, &record) == CUPTI_SUCCESS) {
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        g_pending->records.push_back({ActivityRecord::Kind::kKernel, k->start, k->end, 0});
        ++g_pending->kernels;
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        g_pending->records.push_back({ActivityRecord::Kind::kMemcpy, m->start, m->end, m->bytes});
        ++g_pending->memcpys;
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY2: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpyPtoP4*>(record);
        g_pending->records.push_back({ActivityRecord::Kind::kMemcpy, m->start, m->end, m->bytes});
        ++g_pending->memcpys;
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
        g_pending->records.push_back({ActivityRecord::Kind::kMemset, m->start, m->end, m->bytes});
        ++g_pending->memsets;
        break;
      }
      default:
        break;
    }
  }
  size_t dropped = 0;
  if (cuptiActivityGetNumDroppedRecords(ctx, stream_id, &dropped) == CUPTI_SUCCESS) {
    g_pending->dropped += dropped;
  }
  std::free(buffer);
}

}  // namespace

absl::Status CuptiTracer::Start() {
  auto st = CuptiStatus(cuptiActivityRegisterCallbacks(BufferRequested, BufferCompleted),
                        "cuptiActivityRegisterCallbacks");
  if (!st.ok()) return st;
  for (auto [kind, name] : {std::pair{CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, "CONCURRENT_KERNEL"},
                            std::pair{CUPTI_ACTIVITY_KIND_MEMCPY, "MEMCPY"},
                            std::pair{CUPTI_ACTIVITY_KIND_MEMCPY2, "MEMCPY2"},
                            std::pair{CUPTI_ACTIVITY_KIND_MEMSET, "MEMSET"}}) {
    st = CuptiStatus(cuptiActivityEnable(kind),
                     absl::StrCat("cuptiActivityEnable(", name, ")").c_str());
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<ActivityBatch> CuptiTracer::Collect() {
  // FLUSH_FORCED also hands over buffers that are not full yet.
  auto st = CuptiStatus(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED),
                        "cuptiActivityFlushAll");
  if (!st.ok()) return st;
  std::lock_guard<std::mutex> lock(g_mu);
  ActivityBatch out;
  if (g_pending != nullptr) {
    out = std::move(*g_pending);
    delete g_pending;
    g_pending = nullptr;
  }
  return out;
}

uint64_t CuptiTracer::Now() {
  uint64_t t = 0;
  cuptiGetTimestamp(&t);
  return t;
}

}  // namespace ratchet::kernels
