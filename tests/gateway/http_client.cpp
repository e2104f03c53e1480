// The tests' HTTP clients, on Beast: the one translation unit of the test
// binary that compiles it.

#include "gateway_support.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <memory>

namespace switchyard::test {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr auto io_limit = std::chrono::seconds(120);

http::request<http::string_body> make_request(const std::string& method, const std::string& target,
                                              const std::string& body,
                                              const header_map& headers) {
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers)
    req.set(name, value);
  if (!body.empty() || method == "POST") {
    if (req.find(http::field::content_type) == req.end())
      req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.keep_alive(false);
  req.prepare_payload();
  return req;
}

http_reply to_reply(http::response<http::string_body>& res) {
  http_reply r;
  r.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(f.value());
  }
  r.body = std::move(res.body());
  return r;
}

tcp::endpoint loopback(std::uint16_t port) {
  return {net::ip::make_address("127.0.0.1"), port};
}

// One request of http_concurrent.
struct exchange : std::enable_shared_from_this<exchange> {
  beast::tcp_stream stream;
  http::request<http::string_body> req;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  http_reply* out;

  exchange(net::io_context& ioc, http::request<http::string_body> r, http_reply* o)
    : stream(ioc), req(std::move(r)), out(o) {
    parser.body_limit(64u << 20);
  }

  void fail(const beast::error_code& ec) { out->error = ec.message(); }

  void run(tcp::endpoint endpoint) {
    stream.expires_after(io_limit);
    stream.async_connect(endpoint, [self = shared_from_this()](beast::error_code ec) {
      if (ec)
        return self->fail(ec);
      http::async_write(self->stream, self->req,
                        [self](beast::error_code ec, std::size_t) {
                          if (ec)
                            return self->fail(ec);
                          http::async_read(self->stream, self->buffer, self->parser,
                                           [self](beast::error_code ec, std::size_t) {
                                             if (ec)
                                               return self->fail(ec);
                                             auto res = self->parser.release();
                                             *self->out = to_reply(res);
                                           });
                        });
    });
  }
};

} // namespace

http_reply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, const header_map& headers) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  http_reply out;
  try {
    stream.expires_after(io_limit);
    stream.connect(loopback(port));
    auto req = make_request(method, target, body, headers);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream, buffer, parser);
    auto res = parser.release();
    out = to_reply(res);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

std::vector<http_reply> http_concurrent(std::uint16_t port, std::size_t n,
                                        const std::string& target,
                                        const std::vector<std::string>& bodies,
                                        const header_map& headers) {
  net::io_context ioc;
  std::vector<http_reply> replies(n);
  for (std::size_t i = 0; i < n; ++i)
    std::make_shared<exchange>(ioc, make_request("POST", target, bodies[i % bodies.size()], headers),
                               &replies[i])
      ->run(loopback(port));
  ioc.run();
  return replies;
}

} // namespace switchyard::test
