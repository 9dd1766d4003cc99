// s4-run-model-cpp: the C++ twin of run_model.c -- s4.h used from C++ (extern "C"), with
// the library's objects held by std::unique_ptr and its status codes turned into
// exceptions. Loads a trained S4 layer, runs convolution mode and (for causal layers) the
// recurrent linear step mode on the same input, and compares them.
// Usage: s4-run-model-cpp WEIGHTS.safetensors [CONFIG.json] [L]
// SPDX-License-Identifier: Apache-2.0
#include "s4.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct s4_error : std::runtime_error {
    explicit s4_error(const std::string &what) : std::runtime_error(what) {}
};

void check(s4_status st, const char *what)
{
    if (st != S4_OK)
        throw s4_error(std::string(what) + ": " + s4_status_str(st) + ": " + s4_last_error());
}

struct layer_deleter {
    void operator()(s4_layer *p) const { s4_layer_destroy(p); }
};
struct forward_deleter {
    void operator()(s4_forward *p) const { s4_forward_destroy(p); }
};
struct step_deleter {
    void operator()(s4_step *p) const { s4_step_destroy(p); }
};
using layer_ptr = std::unique_ptr<s4_layer, layer_deleter>;
using forward_ptr = std::unique_ptr<s4_forward, forward_deleter>;
using step_ptr = std::unique_ptr<s4_step, step_deleter>;

layer_ptr load(const char *weights, const char *config)
{
    s4_layer *raw = nullptr;
    check(s4_layer_load(weights, config, &raw), "s4_layer_load");
    return layer_ptr(raw);
}

std::vector<float> run_conv(s4_layer *layer, int B, int64_t L, const std::vector<float> &u,
                            size_t ny)
{
    s4_forward *raw = nullptr;
    check(s4_forward_create(layer, B, L, nullptr, &raw), "s4_forward_create");
    forward_ptr plan(raw);
    std::vector<float> y(ny);
    check(s4_forward_execute(plan.get(), u.data(), y.data(), nullptr, nullptr, 0),
          "s4_forward_execute");
    return y;
}

std::vector<float> run_step(const s4_layer *layer, int B, int64_t L,
                            const std::vector<float> &u, size_t ny)
{
    s4_step *raw = nullptr;
    check(s4_step_create(layer, S4_STEP_LINEAR, B, 1.0, &raw), "s4_step_create");
    step_ptr plan(raw);
    // The state is caller memory; doubles keep it 8-byte aligned.
    std::vector<double> state((s4_step_state_size(plan.get()) + sizeof(double) - 1) /
                              sizeof(double));
    check(s4_step_state_reset(plan.get(), state.data()), "s4_step_state_reset");
    std::vector<float> y(ny);
    check(s4_step_run(plan.get(), state.data(), u.data(), L, y.data(), nullptr, 0),
          "s4_step_run");
    return y;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        std::fprintf(stderr, "usage: s4-run-model-cpp WEIGHTS.safetensors [CONFIG.json] [L]\n");
        return 2;
    }
    try {
        const char *config = argc > 2 ? argv[2] : nullptr;
        const int64_t L = argc > 3 ? std::atoll(argv[3]) : 64;
        if (L < 1)
            throw s4_error("L must be >= 1");
        layer_ptr layer = load(argv[1], config);
        s4_layer_config cfg;
        check(s4_layer_get_config(layer.get(), &cfg), "s4_layer_get_config");
        const int B = 2, H = cfg.ssm.H, F = s4_layer_output_features(layer.get());
        const size_t nu = size_t(B) * size_t(H) * size_t(L), ny = size_t(B) * size_t(F) * size_t(L);
        std::vector<float> u(nu);
        for (size_t i = 0; i < nu; i++)
            u[i] = float(std::sin(0.05 * double(i)) + 0.25 * std::cos(0.31 * double(i % 97)));

        std::vector<float> y_conv = run_conv(layer.get(), B, L, u, ny);
        std::printf("libs4 %s from C++: H = %d, N = %d, L = %lld; conv y[0] = %+.6f\n",
                    s4_version(), H, cfg.ssm.N, static_cast<long long>(L), double(y_conv[0]));
        if (cfg.bidirectional) {
            std::printf("bidirectional layer: no step mode\n");
            return 0;
        }
        std::vector<float> y_step = run_step(layer.get(), B, L, u, ny);
        double diff = 0.0, ref = 0.0;
        for (size_t i = 0; i < ny; i++) {
            diff = std::max(diff, std::fabs(double(y_step[i]) - double(y_conv[i])));
            ref = std::max(ref, std::fabs(double(y_conv[i])));
        }
        std::printf("step y[0] = %+.6f; max |step - conv| / max |conv| = %.2e\n",
                    double(y_step[0]), diff / (ref > 0 ? ref : 1.0));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "s4-run-model-cpp: %s\n", e.what());
        return 1;
    }
    return 0;
}
