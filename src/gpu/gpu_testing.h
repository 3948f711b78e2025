// Shared by the GPU tests (algorithms_test.cc, cagra_test.cc), which run on a GPU in gpu_test
// and on the CPU emulation of the CUDA execution model (emulation/cuda_emu.h) in gpu_emu_test.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "gpu/device.h"

// Problem sizes: full on a GPU; small when gpu_emu_test compiles the test for the CPU
// emulation, where every thread is a fiber.
#ifdef VLAKE_GPU_EMULATION
#define FULL_OR_EMU(full, emu) (emu)
#else
#define FULL_OR_EMU(full, emu) (full)
#endif

// Skips the test, with the reason, when there is no usable GPU.
#define VLAKE_SKIP_WITHOUT_GPU()                                                 \
  do {                                                                           \
    auto vlake_devices_ = ::vlake::gpu::ListDevices();                           \
    if (!vlake_devices_.ok()) GTEST_SKIP() << vlake_devices_.error().ToString(); \
  } while (0)
