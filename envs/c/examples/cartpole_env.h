/*
 * CartPole-v1 in C: gymnasium's classic-control cart-pole (same constants, Euler integration,
 * termination at |x| > 2.4 or |theta| > 12 degrees, reward 1 per step, truncation at 500 steps
 * as gymnasium.make("CartPole-v1")'s TimeLimit does, start state uniform in [-0.05, 0.05]).
 */
#ifndef CARTPOLE_ENV_H
#define CARTPOLE_ENV_H

#include <stdint.h>

#define CARTPOLE_OBSERVATION 4
#define CARTPOLE_ACTIONS 2
#define CARTPOLE_MAX_STEPS 500

typedef struct cartpole {
    double x, x_dot, theta, theta_dot; /* the state, in double precision as gymnasium keeps it */
    uint32_t steps;                    /* steps of the current episode */
    uint64_t rng;                      /* this environment's random generator */
} cartpole;

/* Seed the environment's generator (its episodes' start states follow from it). */
void cartpole_seed(cartpole *env, uint64_t seed);
/* Start an episode; the first observation (float32, as gymnasium returns it) in obs. */
void cartpole_reset(cartpole *env, float obs[CARTPOLE_OBSERVATION]);
/* Push left (action 0) or right (1); returns the reward, sets obs, terminal and truncated. */
double cartpole_step(cartpole *env, int action, float obs[CARTPOLE_OBSERVATION], int *terminal, int *truncated);

#endif
