// SPDX-License-Identifier: GPL-2.0
/*
 * pgproxy transparent mode: every program and map in one object so they share the tables.
 * Each program lives in its own header; common.h has the maps.
 */
#include "common.h"
#include "connect.h"
#include "sockops.h"
#include "getsockopt.h"
#include "getpeername.h"
#include "skmsg.h"
#include "tproxy.h"

char __license[] SEC("license") = "GPL";
