// The autograd layer in one include: Var and backward, the differentiable ops, gradcheck.
#pragma once

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "autograd/var.h"
