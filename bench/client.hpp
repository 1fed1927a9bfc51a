#pragma once
// WebSocket client connections and the threads that run them, behind an interface without
// Asio types: client.cpp is the one translation unit that includes Asio (the WebSocket framing
// and handshake are ws_frame.hpp's, on plain TCP sockets).
//
// An Engine owns N threads, each running its own io_context. Connections are registered with a
// URL, an auction id, a thread and a Handler; connect_all() opens them with a bound on the
// handshakes in flight. A connection counts as open when its FIRST message arrives. Every
// callback of a connection (Handler methods) and every Timer/post callback given for a thread
// runs on that thread; Conn::send() must be called there too.
// A connection answers the server's {"type":"ping"} with {"type":"pong"} by itself, and
// control-frame pings with a pong frame. A frame breaking RFC 6455 (masked, bad opcode, ...)
// ends the connection with close code 1002 (kind "error", counted in protocol_errors).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "scanner.hpp"

namespace bench {

// Monotonic nanoseconds (std::chrono::steady_clock, the clock of Timer::at too).
inline int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

enum class ConnState : uint8_t { registered, connecting, open, failed, closed };

struct CloseInfo {
    bool was_open = false;   // the connection had received its first message
    bool by_us = false;      // the end of the run closed it (not the server)
    int code = -1;           // close frame code; -1 when the connection ended without one
    std::string kind;        // "close_frame", "eof", "reset", "error", "failed"
    std::string reason;      // close frame reason, or the error / failure text
};

class Conn;

class Handler {
public:
    virtual ~Handler() = default;
    // Every text message. `m` is the scanner's view of `raw` (m.type is empty when the message was
    // not a well-formed object); both are valid only during the call.
    virtual void on_message(Conn& c, const Scan& m, std::string_view raw, int64_t now) = 0;
    // Once, when the connection ends (or failed to open).
    virtual void on_closed(Conn& c, const CloseInfo& info, int64_t now) = 0;
};

class Conn {
public:
    virtual ~Conn() = default;
    virtual void send(std::string text) = 0;  // on the connection's thread; ignored unless open
    virtual size_t queued() const = 0;        // messages waiting to be written
    virtual ConnState state() const = 0;      // any thread
    virtual int worker() const = 0;
    virtual int url_index() const = 0;
    virtual int64_t auction() const = 0;
};

class Timer {
public:
    virtual ~Timer() = default;
    // Calls fn on the timer's thread at `when` (now_ns() clock), replacing any earlier arming.
    virtual void at(int64_t when, std::function<void()> fn) = 0;
    virtual void cancel() = 0;
};

struct ConnectProgress {
    int64_t registered = 0, opened = 0, failed = 0;
    int64_t last_open_ns = 0;  // when the latest connection got its first message
};

struct EngineCounters {
    uint64_t messages = 0, bytes = 0, malformed = 0, pings = 0, binary = 0, protocol_errors = 0;
};

class Engine {
public:
    // `sources`: local addresses to bind before connecting (round-robin); empty: the kernel picks.
    // `rcvbuf` > 0: SO_RCVBUF of every client socket, set before connecting; 0: the kernel's.
    static std::unique_ptr<Engine> create(int threads, const std::vector<std::string>& sources, int rcvbuf,
                                          std::string& error);
    virtual ~Engine() = default;

    // Parses ws://HOST[:PORT][/PATH] and resolves HOST; the index, or -1 with `error`.
    virtual int add_url(const std::string& url, std::string& error) = 0;
    virtual const std::string& url(int index) const = 0;

    // Registers a connection (not yet connecting). Before run() or from any thread before connect_all().
    virtual Conn& add(int url_index, int64_t auction, int worker, Handler* handler) = 0;
    virtual int threads() const = 0;

    virtual void run() = 0;  // starts the threads
    // Connects every registered connection, with at most `concurrency` connections between
    // "connecting" and "first message" at once (split evenly over the threads).
    virtual void connect_all(int concurrency) = 0;
    virtual ConnectProgress progress() const = 0;
    // Every connection still without its first message fails with `reason` (the connect deadline).
    virtual void fail_pending(const std::string& reason) = 0;
    virtual std::map<std::string, int64_t> failures() const = 0;

    virtual void post(int worker, std::function<void()> fn) = 0;
    // A timer of that thread, owned by the engine (valid until the engine is destroyed).
    // Create timers before run(), or on the timer's own thread.
    virtual Timer& timer(int worker) = 0;

    // Sends a close frame (1000) on every open connection and waits up to `grace` seconds for the
    // closes to finish; the rest are dropped by stop().
    virtual void close_all(double grace) = 0;
    // Stops and joins the threads. After it, handlers are no longer called.
    virtual void stop() = 0;

    virtual EngineCounters counters() const = 0;  // approximate while running
};

}  // namespace bench
