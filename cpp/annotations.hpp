// What a few Nodes carry beyond the struct: a label (`v.label`), or a hand-written `_op`
// (Value(data, children, 'sin'), a big int exponent's '**k'). Most Nodes have neither, so the
// table holds only those that do, flagged flag::kAnnotated; an entry goes when its Node is freed
// (arena.hpp [A7]: value_state.cpp's observer calls forget()).
#pragma once

#include <string>
#include <unordered_map>

#include "arena.hpp"

namespace arenagrad {

struct Annotation {
  std::string label;
  std::string op;
};

class Annotations {
 public:
  explicit Annotations(Arena& arena) : arena_(arena) {}
  Annotations(const Annotations&) = delete;
  Annotations& operator=(const Annotations&) = delete;

  // The annotation of a live Node, or nullptr if it has none.
  const Annotation* find(NodeId id) const;
  // The annotation of a live Node, created empty if it has none; may throw std::bad_alloc, and
  // then nothing changed.
  Annotation& annotate(NodeId id);
  // The Node `id` is being freed (arena.hpp [A7]): its entry goes.
  void forget(NodeId id) { notes_.erase(id); }

  // The `_op` text a Node was given by hand, else op_name() of its Op ("" for Leaf and an
  // unnamed Custom; "**" for PowConst, whose exponent value_type.cpp appends). What error
  // messages name a node by.
  std::string op_text(NodeId id) const;

 private:
  Arena& arena_;
  std::unordered_map<NodeId, Annotation> notes_;
};

// The process-wide table, over arena() (never destroyed, as the arena [A6]).
Annotations& annotations();

}  // namespace arenagrad
