# The Debian packages the project builds against, sourced by the other scripts.
# Build: compiler, CMake, Ninja. Libraries: OpenBLAS (CPU matrix products; its OpenMP flavour
# shares the project's thread pool), GoogleTest,
# nlohmann-json and CLI11 (configs and the command line), stb (PNG decoding and fonts),
# libjpeg-turbo (JPEG decoding),
# zlib (gzipped datasets), PLplot with its cairo driver (figures of `sdlora report`, optional),
# SLEEF (vectorised erfc and exp of the CPU kernels).
# Fonts: glyphs for backbone pre-training. Data: Fashion-MNIST (the demo).
SDLORA_BUILD_PACKAGES="build-essential cmake ninja-build unzip python3-pip clang-format"
SDLORA_LIB_PACKAGES="libopenblas-dev libopenblas-openmp-dev libgtest-dev nlohmann-json3-dev libcli11-dev libstb-dev zlib1g-dev
  libplplot-dev plplot-driver-cairo libsleef-dev libturbojpeg0-dev"
# Sanitizer and fuzz builds (scripts/test.sh, scripts/fuzz.sh): clang with its runtimes and OpenMP.
SDLORA_CHECK_PACKAGES="clang libclang-rt-14-dev libomp-dev"
SDLORA_PACKAGES="$SDLORA_BUILD_PACKAGES $SDLORA_LIB_PACKAGES $SDLORA_CHECK_PACKAGES fonts-dejavu-core
  dataset-fashion-mnist"

# Puts nvcc on PATH when the CUDA toolkit sits in its usual place.
sdlora_find_cuda() {
  if ! command -v nvcc >/dev/null 2>&1; then
    for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
      if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
    done
  fi
}

# Installs whichever of SDLORA_PACKAGES are missing (apt-get; sudo when not root).
sdlora_install_packages() {
  local missing="" p
  for p in $SDLORA_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "== installing:$missing"
    local SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
  fi
}

# Fonts for `sdlora pretrain` (scripts/pretrain-backbone.sh): many typefaces, as notMNIST had;
# not needed to build, test or run the demo.
SDLORA_FONT_PACKAGES="fonts-dejavu-core fonts-aenigma fonts-dustin fonts-liberation fonts-liberation2
  fonts-freefont-ttf fonts-go fonts-urw-base35 fonts-beteckna fonts-isabella fonts-crosextra-carlito
  fonts-crosextra-caladea fonts-linuxlibertine fonts-ebgaramond fonts-cantarell fonts-open-sans
  fonts-roboto-unhinted fonts-texgyre fonts-lato fonts-inconsolata fonts-anonymous-pro"
