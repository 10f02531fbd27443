#!/bin/bash
# Packs ratchet's executables with the shared libraries they need that a GPU
# machine (Ubuntu, CUDA, no Debian packages) may lack, into one folder:
#   deploy/bundle.sh build bundle
#   LD_LIBRARY_PATH=bundle/lib:/usr/local/cuda/lib64 bundle/bin/ratchet ...
# glibc, libstdc++ and the CUDA/driver libraries are left out: the target has
# its own (newer glibc/libstdc++ are backward compatible; CUDA must match its
# driver). bubblewrap travels too, so workers there can sandbox.
set -euo pipefail
build=${1:-build}
out=${2:-bundle}
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
# training_eval/: the evaluator that `ratchet train` runs from beside itself.
for f in ratchet ratchet-harness ratchet-candidate ratchet-harness-cuda ratchet-candidate-cuda ratchet-gpu-probe oracle.py candidate_host.py kernel_abi.h training_eval; do
  if [ -e "$build/bin/$f" ]; then cp -a "$build/bin/$f" "$out/bin/"; fi
done
# The GPU tests and benchmarks, which only run there.
for f in "$build"/bin/*; do
  case "$(basename "$f")" in *cuda*|*gpu*|*device_check*|*_bench|hack_corpus_test) cp -an "$f" "$out/bin/" ;; esac
done
if command -v bwrap > /dev/null; then cp "$(command -v bwrap)" "$out/bin/"; fi

skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libstdc\+\+|libgcc_s|libcuda\.so|libcudart|libcupti|libcublas|libcublasLt|libnvrtc|libnccl|libnvidia)'
for exe in "$out"/bin/*; do
  [ -x "$exe" ] && file -b "$exe" | grep -q ELF || continue
  ldd "$exe" 2>/dev/null | awk '/=> \// {print $1, $3}' | while read -r name path; do
    if ! echo "$name" | grep -Eq "$skip"; then cp -Ln "$path" "$out/lib/$name" 2>/dev/null || true; fi
  done
done
echo "bundle: $(ls "$out/bin" | wc -l) executables, $(ls "$out/lib" | wc -l) libraries, $(du -sh "$out" | cut -f1)"
