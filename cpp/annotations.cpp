#include "annotations.hpp"

namespace arenagrad {

Annotations& annotations() {
  static Annotations* const instance = new Annotations(arena());  // never destroyed [A6]
  return *instance;
}

const Annotation* Annotations::find(NodeId id) const {
  if (!(arena_.node(id).flags & flag::kAnnotated)) return nullptr;
  return &notes_.at(id);
}

Annotation& Annotations::annotate(NodeId id) {
  Annotation& note = notes_[id];  // may throw std::bad_alloc: nothing flagged yet
  arena_.node(id).flags |= flag::kAnnotated;
  return note;
}

std::string Annotations::op_text(NodeId id) const {
  const Annotation* note = find(id);
  if (note && !note->op.empty()) return note->op;
  return op_name(arena_.node(id).op);
}

}  // namespace arenagrad
