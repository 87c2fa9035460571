# The Debian packages the project builds against, sourced by the other scripts.
# Build: compiler, CMake, Ninja. Libraries: OpenBLAS (CPU matrix products), GoogleTest,
# nlohmann-json and CLI11 (configs and the command line), stb (image decoding and fonts),
# zlib (gzipped datasets). Fonts: glyphs for backbone pre-training. Data: Fashion-MNIST (the demo).
SDLORA_BUILD_PACKAGES="build-essential cmake ninja-build"
SDLORA_LIB_PACKAGES="libopenblas-dev libgtest-dev nlohmann-json3-dev libcli11-dev libstb-dev zlib1g-dev"
SDLORA_PACKAGES="$SDLORA_BUILD_PACKAGES $SDLORA_LIB_PACKAGES fonts-dejavu-core dataset-fashion-mnist"

# Puts nvcc on PATH when the CUDA toolkit sits in its usual place.
sdlora_find_cuda() {
  if ! command -v nvcc >/dev/null 2>&1; then
    for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
      if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
    done
  fi
}
