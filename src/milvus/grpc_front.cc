#include "milvus/grpc_front.h"

#include <fcntl.h>
#include <grpcpp/server_posix.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <chrono>

namespace vlake::milvus {

Result<std::unique_ptr<GrpcFront>> GrpcFront::Start(grpc::Service* service) {
  grpc::ServerBuilder builder;
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // Keep-alive: clients ping idle connections (the Node SDK every 55 s, others every 10 s);
  // accept pings 5 s apart even without calls, and never count them as strikes.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  std::unique_ptr<GrpcFront> front(new GrpcFront);
  front->server_ = builder.BuildAndStart();
  if (front->server_ == nullptr) return Status(Code::kInternal, "gRPC server did not start");
  return front;
}

GrpcFront::~GrpcFront() { Shutdown(); }

std::shared_ptr<grpc::Channel> GrpcFront::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  return server_->InProcessChannel(args);
}

void GrpcFront::Adopt(int fd) {
  if (server_ == nullptr) {
    ::close(fd);
    return;
  }
  // gRPC's event engine expects a non-blocking socket; small frames go out at once.
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  grpc::AddInsecureChannelFromFd(server_.get(), fd);
}

void GrpcFront::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_->Wait();
  server_.reset();
}

}  // namespace vlake::milvus
