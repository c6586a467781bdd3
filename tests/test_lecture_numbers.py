"""The numbers printed in the lecture (README "Testing": every number in the lecture), on both
engines."""
import random

from conftest import assert_close, assert_same, nn_of


def f(x):
    return 3 * x**2 - 4 * x + 5


def test_parabola_value_and_slope_at_three(engine):
    x = engine.Value(3.0)
    y = f(x)
    y.backward()
    assert_same(y.data, 20.0)
    assert_close(x.grad, 14.0)  # f'(x) = 6x - 4


def test_parabola_numerical_slope_from_forward_values(engine):
    h = 0.001
    V = engine.Value
    slope = (f(V(3.0 + h)).data - f(V(3.0)).data) / h
    assert abs(slope - 14.003) < 1e-9  # one-sided estimate: 6x - 4 + 3h


def test_parabola_slope_zero_at_vertex(engine):
    x = engine.Value(2 / 3)
    f(x).backward()
    assert_close(x.grad, 0.0)


def test_three_input_partials_lecture(engine):
    a, b, c = engine.Value(2.0), engine.Value(-3.0), engine.Value(10.0)
    d = a * b + c
    d.backward()
    assert_same(d.data, 4.0)
    assert (a.grad, b.grad, c.grad) == (-3.0, 2.0, 1.0)


def test_running_example_forward_and_backward_lecture(engine):
    V = engine.Value
    a, b, c, f = V(2.0, label="a"), V(-3.0, label="b"), V(10.0, label="c"), V(-2.0, label="f")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    L = d * f
    L.label = "L"
    L.backward()
    assert_same(L.data, -8.0)
    grads = {v.label: v.grad for v in (a, b, c, f, d, e, L)}
    assert grads == {"a": 6.0, "b": -4.0, "c": -2.0, "f": 4.0, "d": -2.0, "e": -2.0, "L": 1.0}


def test_running_example_finite_difference_lecture(engine):
    def L(b):
        V = engine.Value
        return ((V(2.0) * V(b) + V(10.0)) * V(-2.0)).data
    h = 1e-3
    assert abs((L(-3.0 + h) - L(-3.0)) / h - -4.0) < 1e-9  # the lecture's "slope ~ -4"


def test_a_plus_a_pitfall_gives_grad_two(engine):
    a = engine.Value(3.0)
    b = a + a
    b.backward()
    assert_same(b.data, 6.0)
    assert a.grad == 2.0  # = would give 1


def test_tanh_node_and_exp_decomposition_same_gradient(engine):
    # the lecture: "Both give the exact same gradient" (to rounding)
    V = engine.Value
    grads = []
    for decompose in (False, True):
        x1, x2, w1, w2 = V(2.0), V(0.0), V(-3.0), V(1.0)
        b = V(6.8813735870195432)
        n = x1 * w1 + x2 * w2 + b
        if decompose:
            e = (2 * n).exp()
            o = (e - 1) / (e + 1)
        else:
            o = n.tanh()
        o.backward()
        assert_close(o.data, 0.7071067811865476, rel=1e-15)
        grads.append([v.grad for v in (x1, x2, w1, w2, b)])
    for got, want in zip(grads[1], grads[0]):
        assert_close(got, want)
    assert_close(grads[0][0], -1.5)  # Karpathy's neuron: x1.grad = w1 * (1 - o^2)
    assert_close(grads[0][2], 1.0)


XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]


def lecture_step(n):
    ypred = [n(x) for x in XS]
    loss = sum((yout - ygt)**2 for ygt, yout in zip(YS, ypred))
    for p in n.parameters():
        p.grad = 0.0
    loss.backward()
    return loss


def test_lecture_training_step_matches_reference(ag, ref):
    random.seed(1337)
    n = nn_of(ag).MLP(3, [4, 4, 1])
    random.seed(1337)
    m = nn_of(ref).MLP(3, [4, 4, 1])
    got, want = lecture_step(n), lecture_step(m)
    assert_same(got.data, want.data, "loss")
    for p, q in zip(n.parameters(), m.parameters()):
        assert_same(p.data, q.data, "weight")
        assert_close(p.grad, q.grad)
    assert len(n.parameters()) == len(m.parameters()) == 41


def test_lecture_training_loop_decreases_loss(engine):
    random.seed(1337)
    n = nn_of(engine).MLP(3, [4, 4, 1])
    losses = []
    for k in range(20):
        losses.append(lecture_step(n).data)
        for p in n.parameters():
            p.data += -0.1 * p.grad
    assert losses[-1] < losses[0] / 2
