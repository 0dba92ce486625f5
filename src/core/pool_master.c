/* pool_master.c - the prefork master: spawns the children, reaps and
 * replaces them, reloads on HUP, and stops them QUIT -> TERM -> KILL. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "exec.h"
#include "log.h"
#include "pool.h"
#include "pool_signals.h"
#include "pool_stats.h"
#include "slots.h"

#define STORM_EXITS 5		/* abnormal exits … */
#define STORM_WINDOW_MS 10000	/* … within this window throttle respawns */
#define STORM_BACKOFF_MAX_MS 5000
#define KILL_AFTER_TERM_MS 1000

/* How far a child has been told to stop: an old generation's after a
 * reload, or every child once the master stops. */
enum child_stop { STOP_NONE, STOP_QUIT, STOP_TERM, STOP_KILL };

struct child {
	pid_t pid;
	unsigned gen;
	enum child_stop stop;		/* QUIT, TERM, KILL sent */
	long long next_at;		/* when the next escalation is due */
	long long started_at;		/* clock_mono_ms() when it was forked */
	int stat_slot;			/* its slot in the shared figures, or -1 */
};

struct master {
	const struct pool_opts *o;
	struct cfg *cfg;
	struct child kids[POOL_MAX_CHILDREN];
	int nkids;
	unsigned gen;
	pid_t self;
	long long exits[STORM_EXITS];	/* times of recent abnormal exits */
	int nexits;
	long long backoff_ms;
	long long respawn_at;		/* 0: respawn now when short */
	int stopping;
	pid_t sweeper;			/* the running sweep child, 0: none */
	long long next_sweep;
};

static int
spawn_one(struct master *m)
{
	sigset_t all, old;
	pid_t pid;
	int slot;

	if (m->nkids == POOL_MAX_CHILDREN) {
		log_error("child table full (%d)", POOL_MAX_CHILDREN);
		return -1;
	}
	slot = pool_stats_slot_take();
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* Child: its own handlers and pipe before signals flow again. */
		pool_stats_init_child(slot);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		signal(SIGCHLD, SIG_DFL);
		pool_sig_close();
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (getppid() != m->self)
			_exit(0);
		_exit(pool_run_worker(m->o->listen_fd, m->cfg, m->o->max_requests,
		    m->self));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		pool_stats_slot_free(slot);
		return -1;
	}
	m->kids[m->nkids].stat_slot = slot;
	m->kids[m->nkids].pid = pid;
	m->kids[m->nkids].gen = m->gen;
	m->kids[m->nkids].stop = STOP_NONE;
	m->kids[m->nkids].next_at = 0;
	m->kids[m->nkids].started_at = clock_mono_ms();
	m->nkids++;
	log_debug("started child %d (generation %u)", (int)pid, m->gen);
	return 0;
}

static int
current_kids(const struct master *m)
{
	int i, n = 0;

	for (i = 0; i < m->nkids; i++)
		if (m->kids[i].gen == m->gen)
			n++;
	return n;
}

/* Crash-storm throttle: STORM_EXITS abnormal exits within the window
 * delay the next respawn, doubling up to STORM_BACKOFF_MAX_MS. */
static void
note_abnormal_exit(struct master *m, long long now)
{
	int i;

	if (m->nexits == STORM_EXITS) {
		for (i = 1; i < STORM_EXITS; i++)
			m->exits[i - 1] = m->exits[i];
		m->nexits--;
	}
	m->exits[m->nexits++] = now;
	pool_stats_count(POOL_STATS_CRASHES);
	if (m->nexits == STORM_EXITS && now - m->exits[0] < STORM_WINDOW_MS) {
		m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : 250;
		if (m->backoff_ms > STORM_BACKOFF_MAX_MS)
			m->backoff_ms = STORM_BACKOFF_MAX_MS;
		m->respawn_at = now + m->backoff_ms;
		log_error("crash storm: %d abnormal exits in %lld ms, next respawn in %lld ms",
		    STORM_EXITS, now - m->exits[0], m->backoff_ms);
	} else if (m->nexits < STORM_EXITS || now - m->exits[0] >= STORM_WINDOW_MS) {
		m->backoff_ms = 0;
	}
}

/* How a child ended, from its wait status: "exited with status N", or
 * "killed by signal N (SIGNAME)" and " (core dumped)" when it left one.
 * Can't fail (cut to fit). */
static void
describe_end(int st, char *buf, size_t len)
{
	const char *name;

	if (!WIFSIGNALED(st)) {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
		return;
	}
	name = sigabbrev_np(WTERMSIG(st));
	snprintf(buf, len, "killed by signal %d%s%s%s%s", WTERMSIG(st),
	    name != NULL ? " (SIG" : "", name != NULL ? name : "",
	    name != NULL ? ")" : "", WCOREDUMP(st) ? " (core dumped)" : "");
}

/*
 * Forgets the child at kids[i], which ended with wait status st (php-fpm's
 * fpm_children_bury): frees its slot and logs one line of how it ended
 * and how long it lived. One nobody told to stop is replaced, and counted
 * as a restart, and as a crash when it ended abnormally.
 */
static void
bury(struct master *m, int i, int st, long long now)
{
	struct child k = m->kids[i];
	long long lived = now - k.started_at;
	char how[96];

	m->kids[i] = m->kids[--m->nkids];
	pool_stats_slot_free(k.stat_slot);
	describe_end(st, how, sizeof(how));
	if (k.stop != STOP_NONE) {
		/* an old generation's child, or any once the master stops */
		log_info("%schild %d %s%s, slot %d, after %lld.%03lld s",
		    k.gen != m->gen ? "old " : "", (int)k.pid,
		    k.gen != m->gen ? "ended: " : "", how, k.stat_slot,
		    lived / 1000, lived % 1000);
		return;
	}
	pool_stats_count(POOL_STATS_RESTARTS);	/* it is replaced */
	if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0)) {
		log_warn("child %d %s, slot %d, after %lld.%03lld s", (int)k.pid,
		    how, k.stat_slot, lived / 1000, lived % 1000);
		note_abnormal_exit(m, now);
	} else {
		log_info("child %d %s, slot %d, after %lld.%03lld s", (int)k.pid,
		    how, k.stat_slot, lived / 1000, lived % 1000);
	}
}

static void
reap(struct master *m)
{
	long long now = clock_mono_ms();
	pid_t pid;
	int st, i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < m->nkids; i++)
			if (m->kids[i].pid == pid)
				break;
		if (i < m->nkids)
			bury(m, i, st, now);
		else if (pid == m->sweeper)
			m->sweeper = 0;
		/* else an executor orphaned to us */
	}
}

/* Every IMAGEGEN_SWEEP_INTERVAL seconds a short-lived child recovers
 * stuck jobs and starts executors for queued ones; the master itself never
 * blocks on the database. */
static void
sweep_tick(struct master *m, long long now)
{
	struct sweep_stats st;
	pid_t pid;

	if (now < m->next_sweep || m->sweeper != 0)
		return;
	m->next_sweep = now + m->cfg->sweep_interval * 1000;
	pid = fork();
	if (pid == 0) {
		signal(SIGCHLD, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGHUP, SIG_IGN);
		pool_sig_close();
		close(m->o->listen_fd);
		prctl(PR_SET_NAME, "ig-sweeper");
		_exit(exec_sweep_and_kick(m->cfg, &st) == 0 ? 0 : 1);
	}
	if (pid < 0)
		log_error("fork sweeper: %s", strerror(errno));
	else
		m->sweeper = pid;
}

/* QUIT to k: finish the current request and exit. What is left of it
 * after the drain timeout is escalated (escalate). */
static void
ask_to_stop(struct master *m, struct child *k, long long now)
{
	kill(k->pid, SIGQUIT);
	k->stop = STOP_QUIT;
	k->next_at = now + (long long)m->o->drain_timeout * 1000;
}

static void
reload(struct master *m)
{
	struct cfg nc;
	char err[512];
	long long now = clock_mono_ms();
	int i;

	if (cfg_load(&nc, m->o->env_file, CFG_NEED_DB, err, sizeof(err)) != 0) {
		log_error("reload refused, keeping the running configuration: %s",
		    err);
		return;
	}
	/* A slot directory the executors could not use is refused as a bad
	 * setting is, not found out on every job of the new generation. */
	if (slot_check(&nc) != 0) {
		log_error("reload refused, keeping the running configuration:"
		    " the slot directory is unusable (above)");
		cfg_free(&nc);
		return;
	}
	cfg_free(m->cfg);
	*m->cfg = nc;
	log_set_level(m->cfg->log_level);
	m->gen++;
	m->respawn_at = 0;
	pool_stats_count(POOL_STATS_RELOADS);
	log_info("starting generation %u", m->gen);
	while (current_kids(m) < m->o->workers && spawn_one(m) == 0)
		;
	/* The new generation is accepting; the old one finishes its requests
	 * and is escalated after the drain timeout, as on stop. */
	for (i = 0; i < m->nkids; i++)
		if (m->kids[i].gen != m->gen && m->kids[i].stop == STOP_NONE)
			ask_to_stop(m, &m->kids[i], now);
}

/*
 * QUIT -> TERM -> KILL for the children told to stop: TERM when the drain
 * timeout has passed, KILL a second later, so a wedged child cannot live
 * forever. After a reload each old child has its own timer and its own
 * log lines; once the master stops, all share one, and one line a step.
 */
static void
escalate(struct master *m, long long now)
{
	struct child *k;
	int i, termed = 0, killed = 0;

	for (i = 0; i < m->nkids; i++) {
		k = &m->kids[i];
		if (k->stop == STOP_NONE || k->stop == STOP_KILL || now < k->next_at)
			continue;
		if (k->stop == STOP_QUIT) {
			if (!m->stopping)
				log_warn("drain timeout: TERM to old child %d (generation %u)",
				    (int)k->pid, k->gen);
			kill(k->pid, SIGTERM);
			k->stop = STOP_TERM;
			k->next_at = now + KILL_AFTER_TERM_MS;
			termed++;
		} else {
			if (!m->stopping)
				log_warn("KILL to old child %d (generation %u)",
				    (int)k->pid, k->gen);
			kill(k->pid, SIGKILL);
			k->stop = STOP_KILL;
			killed++;
		}
	}
	if (m->stopping && termed > 0)
		log_warn("drain timeout: TERM to %d children", termed);
	if (m->stopping && killed > 0)
		log_warn("KILL to %d children", killed);
}

static int
next_timeout(const struct master *m, long long now)
{
	long long t = 1000;
	int i;

	if (!m->stopping && m->respawn_at > now)
		t = m->respawn_at - now;
	/* The sweep on time, not up to a poll later; none while one runs
	 * (its SIGCHLD wakes the loop). */
	if (!m->stopping && m->sweeper == 0 && m->next_sweep - now < t)
		t = m->next_sweep - now;
	for (i = 0; i < m->nkids; i++)
		if ((m->kids[i].stop == STOP_QUIT || m->kids[i].stop == STOP_TERM) &&
		    m->kids[i].next_at - now < t)
			t = m->kids[i].next_at - now;
	if (t < 0)
		t = 0;
	return t > 1000 ? 1000 : (int)t;
}

int
pool_run_master(const struct pool_opts *o, struct cfg *c)
{
	static struct master m;
	struct pollfd pfd;
	long long now;
	int i, n;

	memset(&m, 0, sizeof(m));
	m.o = o;
	m.cfg = c;
	m.gen = 1;
	m.self = getpid();
	if (pool_sig_open() != 0) {
		log_error("self-pipe: %s", strerror(errno));
		return 1;
	}
	pool_stats_init_main();
	pool_stats_set_workers(o->workers);
	pool_sig_catch(SIGCHLD);
	pool_sig_catch(SIGHUP);
	pool_sig_catch(SIGTERM);
	pool_sig_catch(SIGINT);
	pool_sig_catch(SIGQUIT);
	signal(SIGPIPE, SIG_IGN);
	/* Executors are double-forked away from the responders; as subreaper
	 * the master inherits and reaps them, so none is left a zombie. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	m.next_sweep = clock_mono_ms() + 1000;
	log_info("master %d: %d workers, max-requests %ld", (int)m.self,
	    o->workers, o->max_requests);
	for (;;) {
		now = clock_mono_ms();
		if (pool_sig_chld) {
			pool_sig_chld = 0;
			reap(&m);
		}
		if (pool_sig_stop && !m.stopping) {
			m.stopping = 1;
			log_info("signal %d: draining %d children", (int)pool_sig_stop,
			    m.nkids);
			/* every child, an old one already told too: one deadline */
			for (i = 0; i < m.nkids; i++)
				ask_to_stop(&m, &m.kids[i], now);
		}
		if (pool_sig_hup) {
			pool_sig_hup = 0;
			if (!m.stopping)
				reload(&m);
		}
		if (m.stopping && m.nkids == 0)
			break;
		if (!m.stopping && now >= m.respawn_at) {
			m.respawn_at = 0;
			while (current_kids(&m) < o->workers && spawn_one(&m) == 0)
				;
		}
		escalate(&m, now);
		if (!m.stopping)
			sweep_tick(&m, now);
		pfd.fd = pool_sig_fd();
		pfd.events = POLLIN;
		n = poll(&pfd, 1, next_timeout(&m, clock_mono_ms()));
		if (n > 0)
			pool_sig_drain();
	}
	log_info("master %d: all children gone, exiting", (int)m.self);
	return 0;
}
