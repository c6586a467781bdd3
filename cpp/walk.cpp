#include "walk.hpp"

#include <algorithm>
#include <memory>
#include <thread>

namespace arenagrad {

namespace {
// [W1] The running walk's thread, if any. Read and written with the GIL held [A6].
bool walking = false;
std::thread::id walker;

// [W2] Scratch of the running walk.
struct Scratch {
  std::vector<NodeId> stack, order;
  std::vector<double> values, operand_values;
  std::unique_ptr<double[]> buffer;  // buffer_size doubles, uninitialized
  std::size_t buffer_size = 0;
};
Scratch scratch;

template <class T>
std::vector<T>& cleared(std::vector<T>& v) {
  v.clear();
  return v;
}

bool (*poll_hook)() = nullptr;
void (*wait_hook)() = nullptr;
}  // namespace

WalkScope::WalkScope(Arena& arena) : arena_(arena) {
  const std::thread::id self = std::this_thread::get_id();
  if (walking && walker == self) throw NestedWalk{};
  while (walking) {  // another thread's walk: let it finish
    if (wait_hook) wait_hook();
    else std::this_thread::yield();
  }
  walking = true;
  walker = self;
}

WalkScope::~WalkScope() { walking = false; }

std::vector<NodeId>& WalkScope::stack() { return cleared(scratch.stack); }
std::vector<NodeId>& WalkScope::order() { return cleared(scratch.order); }
std::vector<double>& WalkScope::values() { return cleared(scratch.values); }
std::vector<double>& WalkScope::operand_values() { return cleared(scratch.operand_values); }
double* WalkScope::buffer(std::size_t n, std::size_t kept) {
  if (scratch.buffer_size < n) {
    if (kept == 0) {  // nothing to carry over: the old storage goes first (lower peak)
      scratch.buffer.reset();
      scratch.buffer_size = 0;
    }
    std::unique_ptr<double[]> grown(new double[n]);  // may throw std::bad_alloc
    std::copy_n(scratch.buffer.get(), kept, grown.get());
    scratch.buffer = std::move(grown);
    scratch.buffer_size = n;
  }
  return scratch.buffer.get();
}

void WalkScope::release_scratch() { scratch = Scratch{}; }

std::size_t WalkScope::scratch_bytes() {
  return (scratch.stack.capacity() + scratch.order.capacity()) * sizeof(NodeId) +
         (scratch.values.capacity() + scratch.operand_values.capacity() + scratch.buffer_size) *
             sizeof(double);
}

namespace walk {

std::size_t detail::poll_mask = (std::size_t{1} << 20) - 1;
void set_interval(std::size_t power_of_two) { detail::poll_mask = power_of_two - 1; }

void poll_interrupt() {
  if (poll_hook && poll_hook()) throw Interrupted{};
}

void set_poll_hook(bool (*poll)()) { poll_hook = poll; }
void set_wait_hook(void (*wait)()) { wait_hook = wait; }

}  // namespace walk
}  // namespace arenagrad
