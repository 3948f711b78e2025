#include "rdma/engine.h"

namespace vlake::rdma {
namespace {

class CombinedEngine final : public Engine {
 public:
  explicit CombinedEngine(std::vector<std::unique_ptr<Engine>> engines)
      : engines_(std::move(engines)) {
    for (const auto& e : engines_) {
      if (!name_.empty()) name_ += "+";
      name_ += e->name();
    }
  }
  std::string_view name() const override { return name_; }
  bool Serves(const Token& token) const override { return For(token) != nullptr; }
  Result<std::unique_ptr<Transfer>> Open(const Token& token, std::string_view http_peer,
                                         CancelCheck cancel) override {
    Engine* e = For(token);
    if (e == nullptr) return Error(Code::kRdmaNotSupported, "token variant not served");
    return e->Open(token, http_peer, std::move(cancel));
  }

 private:
  Engine* For(const Token& token) const {
    for (const auto& e : engines_) {
      if (e->Serves(token)) return e.get();
    }
    return nullptr;
  }
  std::vector<std::unique_ptr<Engine>> engines_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Engine> CombineEngines(std::vector<std::unique_ptr<Engine>> engines) {
  if (engines.size() == 1) return std::move(engines.front());
  return std::make_unique<CombinedEngine>(std::move(engines));
}

}  // namespace vlake::rdma
