/* CartPole-v1's physics (gymnasium/envs/classic_control/cartpole.py, kinematics "euler"). */
#include "cartpole_env.h"

#include <math.h>

#define GRAVITY 9.8
#define MASS_CART 1.0
#define MASS_POLE 0.1
#define TOTAL_MASS (MASS_POLE + MASS_CART)
#define LENGTH 0.5 /* half the pole's length */
#define POLE_MASS_LENGTH (MASS_POLE * LENGTH)
#define FORCE_MAG 10.0
#define TAU 0.02
#define X_THRESHOLD 2.4
#define THETA_THRESHOLD (12.0 * 2.0 * 3.14159265358979323846 / 360.0)

static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *state, double low, double high) {
    return low + (high - low) * ((double)(next_random(state) >> 11) * (1.0 / 9007199254740992.0));
}

static void observe(const cartpole *env, float obs[CARTPOLE_OBSERVATION]) {
    obs[0] = (float)env->x;
    obs[1] = (float)env->x_dot;
    obs[2] = (float)env->theta;
    obs[3] = (float)env->theta_dot;
}

void cartpole_seed(cartpole *env, uint64_t seed) { env->rng = seed; }

void cartpole_reset(cartpole *env, float obs[CARTPOLE_OBSERVATION]) {
    env->x = uniform(&env->rng, -0.05, 0.05);
    env->x_dot = uniform(&env->rng, -0.05, 0.05);
    env->theta = uniform(&env->rng, -0.05, 0.05);
    env->theta_dot = uniform(&env->rng, -0.05, 0.05);
    env->steps = 0;
    observe(env, obs);
}

double cartpole_step(cartpole *env, int action, float obs[CARTPOLE_OBSERVATION], int *terminal, int *truncated) {
    double force = action == 1 ? FORCE_MAG : -FORCE_MAG;
    double costheta = cos(env->theta), sintheta = sin(env->theta);
    double temp = (force + POLE_MASS_LENGTH * env->theta_dot * env->theta_dot * sintheta) / TOTAL_MASS;
    double thetaacc = (GRAVITY * sintheta - costheta * temp) /
                      (LENGTH * (4.0 / 3.0 - MASS_POLE * costheta * costheta / TOTAL_MASS));
    double xacc = temp - POLE_MASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    env->x = env->x + TAU * env->x_dot;
    env->x_dot = env->x_dot + TAU * xacc;
    env->theta = env->theta + TAU * env->theta_dot;
    env->theta_dot = env->theta_dot + TAU * thetaacc;
    env->steps++;
    *terminal = env->x < -X_THRESHOLD || env->x > X_THRESHOLD || env->theta < -THETA_THRESHOLD ||
                env->theta > THETA_THRESHOLD;
    *truncated = env->steps >= CARTPOLE_MAX_STEPS;
    observe(env, obs);
    return 1.0;
}
