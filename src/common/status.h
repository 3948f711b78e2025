// Status and Result<T> are part of the public API (include/vlake/status.h); this forwarding
// header keeps the module-relative include path used inside the tree.
#pragma once

#include "vlake/status.h"
