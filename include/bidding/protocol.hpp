#pragma once
// The WebSocket wire contract (docs/protocol.md), in one include: the error codes, what a
// client's frame means, and every message the server sends. Pure: no sockets, no database.
#include <bidding/client_message.hpp>
#include <bidding/error_code.hpp>
#include <bidding/server_messages.hpp>
