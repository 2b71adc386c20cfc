/*
 * Step round trips of one librlx session, as bench/c_client.py measures them (the same steps
 * bench/exchange.py's single_session makes with the Python AgentProxy):
 *
 * 1. --warmup updates, then --steps updates of a zero CartPole state with reward 1, each timed;
 * 2. --steps environment steps of CartPole-v1 (cartpole_env.c) through the agent, timed as a whole.
 *
 * Prints one JSON line: {"steps": N, "rtts_us": [...], "steps_per_s": X, "restarts": R}.
 *
 *   latency --endpoint URL [--steps 10000] [--warmup 200]
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cartpole_env.h"
#include "rlx.h"

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(rlx_client *c, const char *what, int rc) {
    fprintf(stderr, "latency: %s: %s: %s\n", what, rlx_strerror(rc), rlx_last_error(c));
    rlx_close(c);
    return 1;
}

int main(int argc, char **argv) {
    const char *endpoint = NULL;
    unsigned long steps = 10000, warmup = 200, i;
    rlx_options o;
    rlx_client *c = NULL;
    rlx_tensor state, action;
    float zeros[CARTPOLE_OBSERVATION] = {0}, obs[CARTPOLE_OBSERVATION], reward = 1.0f;
    uint32_t shape[2] = {1, CARTPOLE_OBSERVATION};
    double *rtts, started, wall;
    cartpole env;
    int rc, first = 1;

    for (i = 1; i + 1 < (unsigned long)argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0) endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--steps") == 0) steps = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--warmup") == 0) warmup = strtoul(argv[i + 1], NULL, 10);
    }
    if (endpoint == NULL || steps == 0 || (argc - 1) % 2) {
        fprintf(stderr, "usage: latency --endpoint URL [--steps N] [--warmup N]\n");
        return 64;
    }
    rtts = (double *)malloc(steps * sizeof *rtts);
    rlx_options_init(&o);
    o.endpoint = endpoint;
    o.max_state_bytes = sizeof zeros;
    o.max_action_bytes = 64;
    if (rtts == NULL) return 1;
    if ((rc = rlx_connect(&o, &c)) != RLX_OK) return fail(c, "connect", rc);
    if ((rc = rlx_init(c, 0)) != RLX_OK) return fail(c, "init", rc);

    state = rlx_tensor_of(RLX_FLOAT32, zeros, 2, shape);
    for (i = 0; i < warmup; i++)
        if ((rc = rlx_update(c, &reward, &state, 0, 0, &action)) != RLX_OK) return fail(c, "warm-up", rc);
    for (i = 0; i < steps; i++) {
        double t0 = seconds();
        rc = rlx_update(c, &reward, &state, 0, 0, &action);
        rtts[i] = (seconds() - t0) * 1e6;
        if (rc != RLX_OK) return fail(c, "update", rc);
    }

    /* between the two phases: tell the broker the session is alive (as a device pausing would) */
    if ((rc = rlx_heartbeat(c)) != RLX_OK) return fail(c, "heartbeat", rc);
    cartpole_seed(&env, 0);
    cartpole_reset(&env, obs);
    state = rlx_tensor_of(RLX_FLOAT32, obs, 2, shape);
    started = seconds();
    for (i = 0; i < steps; i++) {
        int terminal, truncated;
        rc = rlx_update(c, first ? NULL : &reward, &state, 0, 0, &action);
        if (rc == RLX_RESTART) {
            cartpole_reset(&env, obs);
            first = 1;
            continue;
        }
        if (rc != RLX_OK) return fail(c, "cartpole update", rc);
        first = 0;
        reward = (float)cartpole_step(&env, (int)rlx_tensor_i64(&action, 0), obs, &terminal, &truncated);
        if (terminal || truncated) {
            rc = rlx_update(c, &reward, &state, terminal, truncated, &action);
            if (rc != RLX_OK && rc != RLX_RESTART) return fail(c, "episode end", rc);
            cartpole_reset(&env, obs);
            first = 1;
        }
    }
    wall = seconds() - started;

    printf("{\"steps\": %lu, \"steps_per_s\": %.1f, \"restarts\": %llu, \"rtts_us\": [", steps, steps / wall,
           (unsigned long long)rlx_get_counters(c).restarts);
    for (i = 0; i < steps; i++) printf(i ? ", %.2f" : "%.2f", rtts[i]);
    printf("]}\n");
    free(rtts);
    rlx_close(c);
    return 0;
}
