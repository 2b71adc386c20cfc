/*
 * CartPole-v1 trained through relaax-zmq from C: N environments (cartpole_env.c) stepped as one
 * block of N sessions on one librlx handle, against the broker of a running app
 * (conf/cartpole-c.yaml: DA3C). Prints progress; exits 0 once the mean return of the last
 * --window finished episodes reaches --target, 2 when --max-steps or --time-limit came first
 * or on SIGINT, 1 on an error. The last line is a JSON summary.
 *
 *   cartpole --endpoint tcp://127.0.0.1:7000 [--sessions 16] [--target 475] [--window 100]
 *            [--max-steps S] [--time-limit SEC] [--seed 1] [--exploit] [--progress SEC]
 *            [--timeout-ms MS]
 *   cartpole --replay      read "x x_dot theta theta_dot" then actions on stdin, print each step
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cartpole_env.h"
#include "rlx.h"

#define MAX_SESSIONS 1024
#define MAX_WINDOW 10000

typedef struct settings {
    const char *endpoint;
    unsigned sessions, window;
    double target, time_limit, progress;
    unsigned long long max_steps, seed;
    unsigned timeout_ms;
    int exploit;
} settings;

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int signum) {
    (void)signum;
    interrupted = 1;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(const char *problem) {
    fprintf(stderr,
            "%s\nusage: cartpole --endpoint URL [--sessions N] [--target R] [--window W] [--max-steps S]\n"
            "                [--time-limit SEC] [--seed S] [--exploit] [--progress SEC] [--timeout-ms MS]\n"
            "       cartpole --replay < trajectory\n",
            problem);
    return 64;
}

static int parse(int argc, char **argv, settings *s) {
    int i;
    s->endpoint = "tcp://127.0.0.1:7000";
    s->sessions = 16;
    s->window = 100;
    s->target = 475.0;
    s->time_limit = 0.0;
    s->progress = 2.0;
    s->max_steps = 0;
    s->seed = 1;
    s->timeout_ms = 10000;
    s->exploit = 0;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(arg, "--exploit") == 0) {
            s->exploit = 1;
            continue;
        }
        if (value == NULL) return usage("every option but --exploit takes a value");
        i++;
        if (strcmp(arg, "--endpoint") == 0) s->endpoint = value;
        else if (strcmp(arg, "--sessions") == 0) s->sessions = (unsigned)strtoul(value, &end, 10);
        else if (strcmp(arg, "--window") == 0) s->window = (unsigned)strtoul(value, &end, 10);
        else if (strcmp(arg, "--target") == 0) s->target = strtod(value, &end);
        else if (strcmp(arg, "--time-limit") == 0) s->time_limit = strtod(value, &end);
        else if (strcmp(arg, "--progress") == 0) s->progress = strtod(value, &end);
        else if (strcmp(arg, "--max-steps") == 0) s->max_steps = strtoull(value, &end, 10);
        else if (strcmp(arg, "--seed") == 0) s->seed = strtoull(value, &end, 10);
        else if (strcmp(arg, "--timeout-ms") == 0) s->timeout_ms = (unsigned)strtoul(value, &end, 10);
        else return usage("unknown option");
        if (end != NULL && *end != '\0') return usage("an option's value is not a number");
    }
    if (s->sessions < 1 || s->sessions > MAX_SESSIONS) return usage("--sessions: expected 1..1024");
    if (s->window < 1 || s->window > MAX_WINDOW) return usage("--window: expected 1..10000");
    return 0;
}

/* Step one environment from stdin's start state and actions; print every step (physics checks). */
static int replay(void) {
    cartpole env;
    float obs[CARTPOLE_OBSERVATION];
    int action, terminal = 0, truncated = 0;
    memset(&env, 0, sizeof env);
    if (scanf("%lf %lf %lf %lf", &env.x, &env.x_dot, &env.theta, &env.theta_dot) != 4)
        return usage("--replay: expected the start state on stdin");
    while (!terminal && !truncated && scanf("%d", &action) == 1) {
        double reward = cartpole_step(&env, action, obs, &terminal, &truncated);
        printf("%.9g %.9g %.9g %.9g %g %d %d\n", obs[0], obs[1], obs[2], obs[3], reward, terminal, truncated);
    }
    return 0;
}

/* The last finished episodes' returns. */
typedef struct returns {
    double values[MAX_WINDOW];
    unsigned window, count, next;
    double sum;
} returns;

static void add_return(returns *r, double value) {
    if (r->count == r->window) r->sum -= r->values[r->next];
    else r->count++;
    r->values[r->next] = value;
    r->sum += value;
    r->next = (r->next + 1) % r->window;
}

static double mean_return(const returns *r) { return r->count == r->window ? r->sum / r->window : -INFINITY; }

static cartpole envs[MAX_SESSIONS];
static float states[MAX_SESSIONS * CARTPOLE_OBSERVATION];
static float rewards[MAX_SESSIONS];
static double totals[MAX_SESSIONS];
static uint8_t ends[MAX_SESSIONS];
static returns finished;

int main(int argc, char **argv) {
    settings s;
    rlx_options o;
    rlx_client *c = NULL;
    rlx_tensor state_tensor, actions;
    uint32_t shape[2];
    unsigned long long steps = 0, episodes = 0, updates = 0;
    unsigned i;
    double start, last_progress, elapsed = 0.0;
    int rc, first = 1, solved = 0, stopping = 0, status;

    if (argc == 2 && strcmp(argv[1], "--replay") == 0) return replay();
    if ((rc = parse(argc, argv, &s)) != 0) return rc;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    memset(&finished, 0, sizeof finished);
    finished.window = s.window;

    rlx_options_init(&o);
    o.endpoint = s.endpoint;
    o.session_count = s.sessions;
    o.max_state_bytes = sizeof(float) * CARTPOLE_OBSERVATION * s.sessions;
    o.max_action_bytes = 8u * s.sessions; /* one int64 action per session */
    o.request_timeout_ms = s.timeout_ms;
    o.seed = s.seed;
    rc = rlx_connect(&o, &c);
    if (rc == RLX_OK) rc = rlx_init(c, s.exploit);
    if (rc != RLX_OK) {
        fprintf(stderr, "cartpole: %s: %s\n", rlx_strerror(rc), rlx_last_error(c));
        rlx_close(c);
        return 1;
    }
    printf("cartpole: %u sessions as block %llu on %s (%s)\n", s.sessions, (unsigned long long)rlx_session_id(c),
           s.endpoint, s.exploit ? "exploit" : "training");
    fflush(stdout);

    shape[0] = s.sessions;
    shape[1] = CARTPOLE_OBSERVATION;
    state_tensor = rlx_tensor_of(RLX_FLOAT32, states, 2, shape);
    for (i = 0; i < s.sessions; i++) {
        cartpole_seed(&envs[i], s.seed * 1000003ull + i);
        cartpole_reset(&envs[i], &states[i * CARTPOLE_OBSERVATION]);
    }
    start = last_progress = seconds();
    for (;;) {
        uint64_t stride;
        /* rewards and ends of the last step; the first step of the block carries no reward */
        rc = rlx_update_block(c, first ? NULL : rewards, &state_tensor, ends, &actions);
        if (rc == RLX_RESTART) {
            /* the server lost or moved the block: every environment starts a new episode */
            fprintf(stderr, "cartpole: %s: every environment starts again\n", rlx_last_error(c));
            for (i = 0; i < s.sessions; i++) {
                cartpole_reset(&envs[i], &states[i * CARTPOLE_OBSERVATION]);
                totals[i] = 0.0;
                ends[i] = 0;
            }
            first = 1;
            continue;
        }
        if (rc != RLX_OK) {
            fprintf(stderr, "cartpole: update: %s: %s\n", rlx_strerror(rc), rlx_last_error(c));
            rlx_close(c);
            return 1;
        }
        updates++;
        first = 0;
        if (stopping) break; /* the last episode ends were just sent */
        stride = rlx_tensor_elements(&actions) / s.sessions;
        for (i = 0; i < s.sessions; i++) {
            float *obs = &states[i * CARTPOLE_OBSERVATION];
            int64_t action;
            int terminal, truncated;
            if (ends[i]) { /* the episode ended last step: this row starts the next one */
                cartpole_reset(&envs[i], obs);
                rewards[i] = NAN;
                totals[i] = 0.0;
                ends[i] = 0;
                continue;
            }
            action = rlx_tensor_i64(&actions, i * stride);
            if (action < 0 || action >= CARTPOLE_ACTIONS) {
                fprintf(stderr, "cartpole: action %lld for session %u: expected 0 or 1 (is the app's algorithm "
                        "configured with 2 discrete actions?)\n", (long long)action, i);
                rlx_close(c);
                return 1;
            }
            rewards[i] = (float)cartpole_step(&envs[i], (int)action, obs, &terminal, &truncated);
            totals[i] += rewards[i];
            steps++;
            ends[i] = (uint8_t)((terminal ? RLX_EPISODE_TERMINAL : 0) | (truncated ? RLX_EPISODE_TRUNCATED : 0));
            if (ends[i]) {
                add_return(&finished, totals[i]);
                episodes++;
                rlx_metric_mean(c, "episode_reward", totals[i]);
                rlx_metric_mean(c, "episode_length", envs[i].steps);
            }
        }
        elapsed = seconds() - start;
        solved = mean_return(&finished) >= s.target;
        if (s.progress > 0 && (elapsed - (last_progress - start) >= s.progress || solved)) {
            double mean = mean_return(&finished);
            last_progress = seconds();
            printf("[%6.1f s] steps %llu (%.0f/s)  episodes %llu  mean return %s%.1f (last %u)\n", elapsed, steps,
                   elapsed > 0 ? steps / elapsed : 0.0, episodes, mean == -INFINITY ? "-" : "",
                   mean == -INFINITY ? 0.0 : mean, s.window);
            fflush(stdout);
        }
        stopping = solved || interrupted || (s.max_steps && steps >= s.max_steps) ||
                   (s.time_limit > 0 && elapsed >= s.time_limit);
    }
    /* end the block's episodes on the worker (and send the last metrics) before leaving */
    if ((rc = rlx_reset(c)) != RLX_OK) {
        fprintf(stderr, "cartpole: reset: %s: %s\n", rlx_strerror(rc), rlx_last_error(c));
        rlx_close(c);
        return 1;
    }
    status = solved ? 0 : 2;
    printf("cartpole: %s after %.1f s, %llu steps, %llu episodes\n",
           solved ? "solved" : interrupted ? "interrupted" : "stopped (budget spent)", elapsed, steps, episodes);
    printf("{\"solved\": %s, \"seconds\": %.3f, \"steps\": %llu, \"episodes\": %llu, \"updates\": %llu, "
           "\"mean_return\": %.3f, \"window\": %u, \"sessions\": %u, \"restarts\": %llu, \"steps_per_second\": %.1f}\n",
           solved ? "true" : "false", elapsed, steps, episodes, updates,
           finished.count ? finished.sum / finished.count : 0.0, s.window, s.sessions,
           (unsigned long long)rlx_get_counters(c).restarts, elapsed > 0 ? steps / elapsed : 0.0);
    rlx_close(c);
    return status;
}
