// Command toy-service is a deliberately small second target for the loomchaos
// suite: runs owned by a replica, a per-user quota and a reaper, all kept in
// one shared Postgres.  It exists only to prove that the suite's target seam
// fits a system that is not loomcycle; it is test code and never shipped.
//
// A run is one SSE response: POST /runs takes a quota slot and writes the run
// row in one transaction, sends `agent`, waits RUN_MS, then ends the row and
// gives the slot back in one transaction before sending `done`.  Every
// replica heartbeats its `replicas` row; whichever replica holds the sweeper
// lock marks the runs of a replica whose heartbeat is older than STALE_MS
// failed / owner_lost, gives their slots back and deletes that replica's row.
// TOY_DEFECT_KEEP_SLOT=1 plants a defect: the reaper keeps the slots.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const version = "toy-0.1"

// Advisory lock keys: one serialises schema creation, one elects the sweeper.
const (
	migrateLock = 7_401_000_001
	sweeperLock = 7_401_000_002
)

const schema = `
CREATE TABLE IF NOT EXISTS replicas (
  id text PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS runs (
  id text PRIMARY KEY,
  agent_id text NOT NULL,
  user_id text NOT NULL,
  replica_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
  stop_reason text,
  error text,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  completed_at timestamptz,
  last_heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE UNIQUE INDEX IF NOT EXISTS runs_one_running ON runs (agent_id) WHERE status = 'running';
CREATE TABLE IF NOT EXISTS user_quotas (
  user_id text PRIMARY KEY,
  active_count integer NOT NULL DEFAULT 0 CHECK (active_count >= 0));`

type config struct {
	replicaID, dsn, listen string
	stale, sweep, runFor   time.Duration
	cap                    int
	keepSlot               bool // the planted defect
}

func envMs(name string, def int) time.Duration {
	return time.Duration(envInt(name, def)) * time.Millisecond
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func loadConfig() config {
	cfg := config{
		replicaID: os.Getenv("REPLICA_ID"),
		dsn:       os.Getenv("PG_DSN"),
		listen:    os.Getenv("LISTEN_ADDR"),
		stale:     envMs("STALE_MS", 6000),
		sweep:     envMs("SWEEP_MS", 1000),
		runFor:    envMs("RUN_MS", 3000),
		cap:       envInt("CAP", 4),
		keepSlot:  os.Getenv("TOY_DEFECT_KEEP_SLOT") == "1",
	}
	if cfg.listen == "" {
		cfg.listen = ":8787"
	}
	if cfg.replicaID == "" || cfg.dsn == "" {
		log.Fatal("REPLICA_ID and PG_DSN are required")
	}
	return cfg
}

type liveRun struct {
	runID  string
	cancel chan string   // a cancel's reason
	done   chan struct{} // closed once the run's row is final
}

type server struct {
	cfg  config
	db   *pgxpool.Pool
	mu   sync.Mutex
	live map[string]*liveRun // by agent id: the runs this process is serving
}

var errQuota = errors.New("per-user quota exhausted")

func main() {
	cfg := loadConfig()
	db, err := pgxpool.New(context.Background(), cfg.dsn)
	if err != nil {
		log.Fatalf("pool: %v", err)
	}
	s := &server{cfg: cfg, db: db, live: map[string]*liveRun{}}
	if err := s.boot(); err != nil {
		log.Fatalf("boot: %v", err)
	}
	go s.every(time.Second, s.heartbeat)
	go s.every(cfg.sweep, s.sweep)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /runs", s.startRun)
	mux.HandleFunc("GET /agents/{agent}", s.status)
	mux.HandleFunc("POST /agents/{agent}/cancel", s.cancel)
	mux.HandleFunc("GET /healthz", s.health)
	log.Printf("%s %s listening on %s (stale %v, sweep %v, run %v, cap %d, keep-slot defect %v)",
		version, cfg.replicaID, cfg.listen, cfg.stale, cfg.sweep, cfg.runFor, cfg.cap, cfg.keepSlot)
	log.Fatal(http.ListenAndServe(cfg.listen, mux))
}

// boot creates the schema, reaps what an earlier process under this id left running, and
// registers the replica.  Postgres may still be coming up behind its proxy: bounded retries.
func (s *server) boot() error {
	var err error
	for try := 0; try < 30; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, schema); err != nil {
				return err
			}
			if err := s.reap(ctx, tx, s.cfg.replicaID); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO replicas (id) VALUES ($1)", s.cfg.replicaID)
			return err
		})
		cancel()
		if err == nil {
			return nil
		}
		log.Printf("boot attempt %d: %v", try+1, err)
		time.Sleep(time.Second)
	}
	return err
}

func (s *server) every(period time.Duration, step func(context.Context) error) {
	for range time.Tick(period) {
		ctx, cancel := context.WithTimeout(context.Background(), period+5*time.Second)
		if err := step(ctx); err != nil {
			log.Printf("background step: %v", err)
		}
		cancel()
	}
}

// heartbeat re-inserts the row when a sweeper deleted it (this process was frozen, not dead).
func (s *server) heartbeat(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `INSERT INTO replicas (id) VALUES ($1)
		ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = clock_timestamp()`, s.cfg.replicaID)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `UPDATE runs SET last_heartbeat_at = clock_timestamp()
		WHERE replica_id = $1 AND status = 'running'`, s.cfg.replicaID)
	return err
}

func (s *server) sweep(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var leader bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", sweeperLock).Scan(&leader); err != nil || !leader {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id FROM replicas
			WHERE id <> $1 AND last_heartbeat_at < clock_timestamp() - make_interval(secs => $2)`,
			s.cfg.replicaID, s.cfg.stale.Seconds())
		if err != nil {
			return err
		}
		stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range stale {
			if err := s.reap(ctx, tx, id); err != nil {
				return err
			}
			log.Printf("reaped replica %s", id)
		}
		return nil
	})
}

// reap ends a dead replica's running runs, gives their slots back and deletes its row.
func (s *server) reap(ctx context.Context, tx pgx.Tx, replica string) error {
	rows, err := tx.Query(ctx, `UPDATE runs SET status = 'failed', stop_reason = 'owner_lost',
		error = 'owner lost', completed_at = clock_timestamp()
		WHERE replica_id = $1 AND status = 'running' RETURNING user_id`, replica)
	if err != nil {
		return err
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if !s.cfg.keepSlot { // the planted defect skips the give-back
		for _, user := range users {
			if _, err := tx.Exec(ctx, `UPDATE user_quotas SET active_count = active_count - 1
				WHERE user_id = $1`, user); err != nil {
				return err
			}
		}
	}
	_, err = tx.Exec(ctx, "DELETE FROM replicas WHERE id = $1", replica)
	return err
}

func (s *server) startRun(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AgentID string `json:"agent_id"`
		UserID  string `json:"user_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.AgentID == "" || req.UserID == "" {
		writeJSON(w, http.StatusBadRequest, errBody("bad_request", "agent_id and user_id are required"))
		return
	}
	runID := newRunID()
	if status, code, err := s.admit(r.Context(), runID, req.AgentID, req.UserID); err != nil {
		writeJSON(w, status, errBody(code, err.Error()))
		return
	}
	run := &liveRun{runID: runID, cancel: make(chan string, 1), done: make(chan struct{})}
	s.mu.Lock()
	s.live[req.AgentID] = run
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.live, req.AgentID)
		s.mu.Unlock()
		close(run.done)
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send(w, "agent", map[string]any{"run_id": runID, "agent_id": req.AgentID, "replica_id": s.cfg.replicaID})

	status, reason := "completed", "finished"
	timer := time.NewTimer(s.cfg.runFor)
	defer timer.Stop()
	select {
	case <-timer.C:
	case reason = <-run.cancel:
		status = "cancelled"
	case <-r.Context().Done():
		status, reason = "cancelled", "client gone"
	}
	// The client may be gone: the final write must not depend on its request.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ended, err := s.finish(ctx, runID, req.UserID, status, reason)
	switch {
	case err != nil:
		send(w, "error", map[string]any{"run_id": runID, "error": "finishing the run: " + err.Error()})
	case !ended:
		send(w, "error", map[string]any{"run_id": runID, "error": "the run was ended elsewhere"})
	case status == "completed":
		send(w, "done", map[string]any{"run_id": runID, "replica_id": s.cfg.replicaID, "stop_reason": reason})
	default:
		send(w, "error", map[string]any{"run_id": runID, "error": "cancelled: " + reason})
	}
}

// admit takes a quota slot and writes the run row in one transaction: no slot without a row.
func (s *server) admit(ctx context.Context, runID, agent, user string) (int, string, error) {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO user_quotas (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE user_quotas SET active_count = active_count + 1
			WHERE user_id = $1 AND ($2 <= 0 OR active_count < $2)`, user, s.cfg.cap)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errQuota
		}
		_, err = tx.Exec(ctx, `INSERT INTO runs (id, agent_id, user_id, replica_id, status)
			VALUES ($1, $2, $3, $4, 'running')`, runID, agent, user, s.cfg.replicaID)
		return err
	})
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return 0, "", nil
	case errors.Is(err, errQuota):
		return http.StatusTooManyRequests, "per_user_quota_exhausted", err
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return http.StatusConflict, "agent_id_in_use", errors.New("this agent_id has a running run")
	default:
		return http.StatusServiceUnavailable, "database_error", err
	}
}

// finish ends the row (only if still running: a reaper may have been first) and gives the
// slot back in the same transaction; it reports whether this call ended the run.
func (s *server) finish(ctx context.Context, runID, user, status, reason string) (bool, error) {
	ended := false
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE runs SET status = $2, stop_reason = $3, completed_at = clock_timestamp()
			WHERE id = $1 AND status = 'running'`, runID, status, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		ended = true
		_, err = tx.Exec(ctx, "UPDATE user_quotas SET active_count = active_count - 1 WHERE user_id = $1", user)
		return err
	})
	return ended && err == nil, err
}

// newestRun is the agent id's newest row: (run id, owner, status, stop reason, error).
func (s *server) newestRun(ctx context.Context, agent string) (id, owner, status string, stop, errText *string, err error) {
	err = s.db.QueryRow(ctx, `SELECT id, replica_id, status, stop_reason, error FROM runs
		WHERE agent_id = $1 ORDER BY started_at DESC LIMIT 1`, agent).Scan(&id, &owner, &status, &stop, &errText)
	return
}

func (s *server) serving(agent string) *liveRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[agent]
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent")
	id, owner, status, stop, errText, err := s.newestRun(r.Context(), agent)
	if errors.Is(err, pgx.ErrNoRows) {
		writeJSON(w, http.StatusNotFound, errBody("unknown_agent_id", "no run for this agent_id"))
		return
	} else if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errBody("database_error", err.Error()))
		return
	}
	run := s.serving(agent)
	writeJSON(w, http.StatusOK, map[string]any{"run_id": id, "agent_id": agent, "replica_id": owner,
		"status": status, "stop_reason": stop, "error": errText, "live": run != nil && run.runID == id})
}

// cancel stops a run this process serves.  The toy has no backplane: a run owned by another
// replica is answered owner_replica_unreachable, which the client classifies as such.
func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent")
	var body struct {
		Reason string `json:"reason"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body) // an empty body means the default reason
	reason := body.Reason
	if reason == "" {
		reason = "stopped by request"
	}
	if run := s.serving(agent); run != nil {
		select {
		case run.cancel <- reason:
		default: // a cancel is already on its way
		}
		select {
		case <-run.done:
			writeJSON(w, http.StatusOK, map[string]any{"cancelled": true, "reason": reason, "run_id": run.runID})
		case <-time.After(5 * time.Second):
			writeJSON(w, http.StatusGatewayTimeout, errBody("cancel_timeout", "the run did not stop in time"))
		}
		return
	}
	id, _, status, _, _, err := s.newestRun(r.Context(), agent)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		writeJSON(w, http.StatusNotFound, errBody("unknown_agent_id", "no run for this agent_id"))
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, errBody("database_error", err.Error()))
	case status != "running":
		writeJSON(w, http.StatusOK, map[string]any{"cancelled": false, "status": status, "run_id": id})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"cancelled": false, "status": status, "run_id": id,
			"reason": "owner_replica_unreachable"})
	}
}

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	type replica struct {
		ID              string    `json:"id"`
		StartedAt       time.Time `json:"started_at"`
		LastHeartbeatAt time.Time `json:"last_heartbeat_at"`
	}
	body := map[string]any{"ok": true, "replica_id": s.cfg.replicaID, "version": version}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// Without a readable table the list is left out (ok stays true): the client tells the two apart.
	if rows, err := s.db.Query(ctx, "SELECT id, started_at, last_heartbeat_at FROM replicas ORDER BY id"); err == nil {
		if list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[replica]); err == nil {
			body["replicas"] = list
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return "run_" + hex.EncodeToString(b)
}

func errBody(code, message string) map[string]any {
	return map[string]any{"code": code, "error": message}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func send(w http.ResponseWriter, event string, data any) {
	b, _ := json.Marshal(data)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
