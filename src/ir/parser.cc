// IR parser: reads the text form written by printer.cc. It checks syntax, that referenced names
// exist and that attributes fit the op's schema; types and structure are left to Verify.
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>

#include "ir/op_registry.h"
#include "ir/text.h"

namespace zt::ir {
namespace {

enum class Tok { kEnd, kIdent, kNumber, kString, kValueRef, kNodeRef, kPunct };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;
  int line = 0;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  StatusOr<Token> Next() {
    SkipSpace();
    Token t;
    t.line = line_;
    if (pos_ >= s_.size()) return t;
    char c = s_[pos_];
    if (c == '%') {
      ++pos_;
      t.kind = Tok::kValueRef;
      if (pos_ < s_.size() && s_[pos_] == '"') {
        ZT_ASSIGN_OR_RETURN(t.text, QuotedString());
      } else {
        t.text = Word();
        if (t.text.empty()) return Error("expected a value name after '%'");
      }
      return t;
    }
    if (c == '#') {
      ++pos_;
      t.kind = Tok::kNodeRef;
      t.text = Word();
      return t;
    }
    if (c == '"') {
      t.kind = Tok::kString;
      ZT_ASSIGN_OR_RETURN(t.text, QuotedString());
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+') {
      t.kind = Tok::kNumber;
      size_t b = pos_++;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                  s_[pos_] == '.' || s_[pos_] == '+' || s_[pos_] == '-')) {
        ++pos_;
      }
      t.text = std::string(s_.substr(b, pos_ - b));
      return t;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      t.kind = Tok::kIdent;
      t.text = Word();
      return t;
    }
    if (std::string_view("=(){}[],:!@").find(c) != std::string_view::npos) {
      t.kind = Tok::kPunct;
      t.text = std::string(1, c);
      ++pos_;
      return t;
    }
    return Error(std::string("unexpected character '") + c + "'");
  }

  Status Error(const std::string& msg) const {
    return InvalidArgument("IR line " + std::to_string(line_) + ": " + msg);
  }

 private:
  void SkipSpace() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') ++line_;
      if (c == '/' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '/') {  // comment to end of line
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
        continue;
      }
      if (!std::isspace(static_cast<unsigned char>(c))) break;
      ++pos_;
    }
  }
  std::string Word() {
    size_t b = pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) break;
      ++pos_;
    }
    return std::string(s_.substr(b, pos_ - b));
  }
  StatusOr<std::string> QuotedString() {
    ++pos_;  // opening quote
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\n') return Error("unterminated string");
      if (c == '\\' && pos_ < s_.size()) {
        char e = s_[pos_++];
        out += (e == 'n') ? '\n' : e;
      } else {
        out += c;
      }
    }
    if (pos_ >= s_.size()) return Error("unterminated string");
    ++pos_;
    return out;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int line_ = 1;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : lex_(text) {}

  StatusOr<std::unique_ptr<Graph>> Parse() {
    ZT_RETURN_IF_ERROR(Advance());
    ZT_RETURN_IF_ERROR(ExpectIdent("graph"));
    if (tok_.kind != Tok::kString) return Err("expected the graph name in quotes");
    graph_ = std::make_unique<Graph>(tok_.text);
    ZT_RETURN_IF_ERROR(Advance());
    ZT_RETURN_IF_ERROR(ExpectPunct("{"));
    while (!(tok_.kind == Tok::kPunct && tok_.text == "}")) {
      if (tok_.kind == Tok::kEnd) return Err("missing '}' at end of graph");
      ZT_RETURN_IF_ERROR(Statement());
    }
    ZT_RETURN_IF_ERROR(Advance());
    if (tok_.kind != Tok::kEnd) return Err("text after the closing '}'");
    for (auto& [node, refs] : pending_deps_) {
      for (auto& [index, line] : refs) {
        if (index < 0 || index >= static_cast<int>(graph_->nodes().size())) {
          return InvalidArgument("IR line " + std::to_string(line) + ": deps names node #" +
                                 std::to_string(index) + ", which does not exist");
        }
        node->deps.push_back(graph_->nodes()[index].get());
      }
    }
    return std::move(graph_);
  }

 private:
  Status Advance() {
    ZT_ASSIGN_OR_RETURN(tok_, lex_.Next());
    return OkStatus();
  }
  Status Err(const std::string& msg) const {
    return InvalidArgument("IR line " + std::to_string(tok_.line) + ": " + msg +
                           (tok_.kind == Tok::kEnd ? " (at end of text)" : " (at '" + tok_.text + "')"));
  }
  // For errors found after the offending tokens were consumed: names the line they were on.
  static Status ErrAt(int line, const std::string& msg) {
    return InvalidArgument("IR line " + std::to_string(line) + ": " + msg);
  }
  bool IsPunct(const char* p) const { return tok_.kind == Tok::kPunct && tok_.text == p; }
  Status ExpectPunct(const char* p) {
    if (!IsPunct(p)) return Err(std::string("expected '") + p + "'");
    return Advance();
  }
  Status ExpectIdent(const char* w) {
    if (tok_.kind != Tok::kIdent || tok_.text != w) return Err(std::string("expected '") + w + "'");
    return Advance();
  }

  StatusOr<Value*> ValueRef() {
    if (tok_.kind != Tok::kValueRef) return Err("expected a value reference like %x");
    Value* v = graph_->FindValue(tok_.text);
    if (v == nullptr) return Err("%" + tok_.text + " is not defined above");
    ZT_RETURN_IF_ERROR(Advance());
    return v;
  }

  StatusOr<int64_t> Int() {
    if (tok_.kind != Tok::kNumber) return Err("expected an integer");
    int64_t x = 0;
    const char* b = tok_.text.data();
    const char* e = b + tok_.text.size();
    if (*b == '+') ++b;
    auto r = std::from_chars(b, e, x);
    if (r.ec != std::errc() || r.ptr != e) return Err("expected an integer");
    ZT_RETURN_IF_ERROR(Advance());
    return x;
  }

  StatusOr<double> Float() {
    std::string t = tok_.text;
    if (tok_.kind == Tok::kIdent && (t == "nan" || t == "inf")) {
      ZT_RETURN_IF_ERROR(Advance());
      return t == "nan" ? std::nan("") : INFINITY;
    }
    if (tok_.kind == Tok::kNumber && t == "-inf") {
      ZT_RETURN_IF_ERROR(Advance());
      return -INFINITY;
    }
    if (tok_.kind != Tok::kNumber) return Err("expected a number");
    double x = 0;
    const char* b = t.data();
    const char* e = b + t.size();
    if (*b == '+') ++b;
    auto r = std::from_chars(b, e, x);
    if (r.ec != std::errc() || r.ptr != e) return Err("expected a number");
    ZT_RETURN_IF_ERROR(Advance());
    return x;
  }

  StatusOr<std::vector<int64_t>> IntList() {
    ZT_RETURN_IF_ERROR(ExpectPunct("["));
    std::vector<int64_t> xs;
    while (!IsPunct("]")) {
      if (!xs.empty()) ZT_RETURN_IF_ERROR(ExpectPunct(","));
      ZT_ASSIGN_OR_RETURN(int64_t x, Int());
      xs.push_back(x);
    }
    ZT_RETURN_IF_ERROR(Advance());
    return xs;
  }

  StatusOr<DType> DTypeTok() {
    if (tok_.kind != Tok::kIdent) return Err("expected a dtype");
    auto d = ParseDType(tok_.text);
    if (!d) return Err("unknown dtype '" + tok_.text + "' (f32, bf16, f16, i32, i64, u8)");
    ZT_RETURN_IF_ERROR(Advance());
    return *d;
  }

  // dtype followed immediately by [dims], e.g. f32[2,3]; the lexer splits them.
  StatusOr<TypeSpec> Type() {
    int line = tok_.line;
    ZT_ASSIGN_OR_RETURN(DType d, DTypeTok());
    ZT_ASSIGN_OR_RETURN(auto dims, IntList());
    for (int64_t x : dims)
      if (x < 0) return ErrAt(line, "negative dimension");
    return TypeSpec{d, Shape(dims)};
  }

  struct DeclInfo {
    std::string name;
    TypeSpec type;
    std::optional<MemCategory> category;
    std::optional<int64_t> offset;
  };

  StatusOr<DeclInfo> Decl() {
    DeclInfo d;
    if (tok_.kind != Tok::kValueRef) return Err("expected a value name like %x");
    d.name = tok_.text;
    if (graph_->FindValue(d.name)) return Err("%" + d.name + " is defined twice");
    ZT_RETURN_IF_ERROR(Advance());
    ZT_RETURN_IF_ERROR(ExpectPunct(":"));
    ZT_ASSIGN_OR_RETURN(d.type, Type());
    if (IsPunct("!")) {
      ZT_RETURN_IF_ERROR(Advance());
      if (tok_.kind != Tok::kIdent) return Err("expected a memory category after '!'");
      d.category = ParseMemCategory(tok_.text);
      if (!d.category) return Err("unknown memory category '" + tok_.text + "'");
      ZT_RETURN_IF_ERROR(Advance());
    }
    if (IsPunct("@")) {
      ZT_RETURN_IF_ERROR(Advance());
      int line = tok_.line;
      ZT_ASSIGN_OR_RETURN(int64_t off, Int());
      if (off < 0) return ErrAt(line, "negative offset");
      d.offset = off;
    }
    return d;
  }

  void Apply(Value* v, const DeclInfo& d) {
    if (d.category) v->category = *d.category;
    v->offset = d.offset;
  }

  StatusOr<AttrValue> AttrVal(AttrType type) {
    switch (type) {
      case AttrType::kInt: {
        ZT_ASSIGN_OR_RETURN(int64_t x, Int());
        return AttrValue(x);
      }
      case AttrType::kFloat: {
        ZT_ASSIGN_OR_RETURN(double x, Float());
        return AttrValue(x);
      }
      case AttrType::kBool: {
        if (tok_.kind != Tok::kIdent || (tok_.text != "true" && tok_.text != "false"))
          return Err("expected true or false");
        bool b = tok_.text == "true";
        ZT_RETURN_IF_ERROR(Advance());
        return AttrValue(b);
      }
      case AttrType::kString: {
        if (tok_.kind != Tok::kString) return Err("expected a quoted string");
        std::string s = tok_.text;
        ZT_RETURN_IF_ERROR(Advance());
        return AttrValue(s);
      }
      case AttrType::kInts: {
        ZT_ASSIGN_OR_RETURN(auto xs, IntList());
        return AttrValue(xs);
      }
      case AttrType::kDType: {
        ZT_ASSIGN_OR_RETURN(DType d, DTypeTok());
        return AttrValue(d);
      }
    }
    return Err("bad attribute type");
  }

  Status Statement() {
    if (tok_.kind == Tok::kIdent) {
      std::string w = tok_.text;
      if (w == "input" || w == "param" || w == "state") {
        ZT_RETURN_IF_ERROR(Advance());
        ZT_ASSIGN_OR_RETURN(DeclInfo d, Decl());
        Value* v = w == "input"   ? graph_->AddInput(d.name, d.type.dtype, d.type.shape)
                   : w == "param" ? graph_->AddParam(d.name, d.type.dtype, d.type.shape)
                                  : graph_->AddState(d.name, d.type.dtype, d.type.shape,
                                                     MemCategory::kOptimizerState);
        Apply(v, d);
        return OkStatus();
      }
      if (w == "output" || w == "loss") {
        ZT_RETURN_IF_ERROR(Advance());
        ZT_ASSIGN_OR_RETURN(Value * v, ValueRef());
        if (w == "output") graph_->outputs().push_back(v);
        else graph_->set_loss(v);
        return OkStatus();
      }
      if (w == "grad") {
        ZT_RETURN_IF_ERROR(Advance());
        ZT_ASSIGN_OR_RETURN(Value * p, ValueRef());
        ZT_RETURN_IF_ERROR(ExpectPunct("="));
        ZT_ASSIGN_OR_RETURN(Value * g, ValueRef());
        graph_->grads().push_back({p, g});
        return OkStatus();
      }
      return NodeStatement({});  // a node without outputs
    }
    std::vector<DeclInfo> outs;
    while (true) {
      int line = tok_.line;
      ZT_ASSIGN_OR_RETURN(DeclInfo d, Decl());
      for (auto& o : outs)
        if (o.name == d.name) return ErrAt(line, "%" + d.name + " is defined twice");
      outs.push_back(d);
      if (IsPunct(",")) {
        ZT_RETURN_IF_ERROR(Advance());
        continue;
      }
      break;
    }
    ZT_RETURN_IF_ERROR(ExpectPunct("="));
    return NodeStatement(outs);
  }

  Status NodeStatement(const std::vector<DeclInfo>& outs) {
    if (tok_.kind != Tok::kIdent) return Err("expected an op name");
    const OpDef* op = OpRegistry::Global().Find(tok_.text);
    if (op == nullptr) return Err("unknown op '" + tok_.text + "'");
    ZT_RETURN_IF_ERROR(Advance());
    ZT_RETURN_IF_ERROR(ExpectPunct("("));
    std::vector<Value*> inputs;
    while (!IsPunct(")")) {
      if (!inputs.empty()) ZT_RETURN_IF_ERROR(ExpectPunct(","));
      ZT_ASSIGN_OR_RETURN(Value * v, ValueRef());
      inputs.push_back(v);
    }
    ZT_RETURN_IF_ERROR(Advance());
    AttrMap attrs;
    if (IsPunct("{")) {
      ZT_RETURN_IF_ERROR(Advance());
      while (!IsPunct("}")) {
        if (!attrs.items().empty()) ZT_RETURN_IF_ERROR(ExpectPunct(","));
        if (tok_.kind != Tok::kIdent) return Err("expected an attribute name");
        std::string key = tok_.text;
        const AttrSpec* spec = op->FindAttr(key);
        if (spec == nullptr) return Err("op '" + op->name + "' has no attribute '" + key + "'");
        if (attrs.Has(key)) return Err("attribute '" + key + "' given twice");
        ZT_RETURN_IF_ERROR(Advance());
        ZT_RETURN_IF_ERROR(ExpectPunct("="));
        ZT_ASSIGN_OR_RETURN(AttrValue v, AttrVal(spec->type));
        attrs.Set(key, std::move(v));
      }
      ZT_RETURN_IF_ERROR(Advance());
    }
    std::vector<Graph::OutputSpec> specs;
    for (auto& d : outs) specs.push_back({d.name, d.type.dtype, d.type.shape});
    Node* node = graph_->AddNode(op, std::move(inputs), std::move(attrs), specs);
    for (size_t i = 0; i < outs.size(); ++i) Apply(node->outputs[i], outs[i]);
    // Trailing node properties.
    while (tok_.kind == Tok::kIdent && (tok_.text == "phase" || tok_.text == "stream" || tok_.text == "deps")) {
      std::string key = tok_.text;
      ZT_RETURN_IF_ERROR(Advance());
      ZT_RETURN_IF_ERROR(ExpectPunct("="));
      if (key == "phase") {
        if (tok_.kind != Tok::kIdent) return Err("expected a phase");
        auto p = ParsePhase(tok_.text);
        if (!p) return Err("unknown phase '" + tok_.text + "' (forward, backward, optimizer)");
        node->phase = *p;
        ZT_RETURN_IF_ERROR(Advance());
      } else if (key == "stream") {
        ZT_ASSIGN_OR_RETURN(int64_t s, Int());
        node->stream = static_cast<int>(s);
      } else {
        ZT_RETURN_IF_ERROR(ExpectPunct("["));
        while (!IsPunct("]")) {
          if (!pending_deps_[node].empty()) ZT_RETURN_IF_ERROR(ExpectPunct(","));
          if (tok_.kind != Tok::kNodeRef) return Err("expected a node reference like #3");
          int idx = 0;
          auto r = std::from_chars(tok_.text.data(), tok_.text.data() + tok_.text.size(), idx);
          if (r.ec != std::errc() || r.ptr != tok_.text.data() + tok_.text.size())
            return Err("bad node reference");
          pending_deps_[node].push_back({idx, tok_.line});
          ZT_RETURN_IF_ERROR(Advance());
        }
        ZT_RETURN_IF_ERROR(Advance());
      }
    }
    return OkStatus();
  }

  Lexer lex_;
  Token tok_;
  std::unique_ptr<Graph> graph_;
  std::map<Node*, std::vector<std::pair<int, int>>> pending_deps_;
};

}  // namespace

StatusOr<std::unique_ptr<Graph>> ParseGraph(std::string_view text) { return Parser(text).Parse(); }

}  // namespace zt::ir
