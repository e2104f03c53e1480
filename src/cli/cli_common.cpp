#include "cli_common.hpp"
