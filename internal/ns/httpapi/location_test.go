package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
)

// agentDo sends an agent request with a server credential.
func (f *fixture) agentDo(method, path, body, cred string) (int, string) {
	f.t.Helper()
	var r *strings.Reader
	if body != "" {
		r = strings.NewReader(body)
	} else {
		r = strings.NewReader("")
	}
	return f.do(method, path, r, cred)
}

func TestLocationEventsHistoryAndAlerts(t *testing.T) {
	f := newFixture(t)
	cred := f.enroll("ps-a", "linux")
	event := func(status uint32, progress bool) string {
		ev := api.LocationStatus{StoragePath: "/srv/wharf", VolumeTotalMB: 1000, VolumeFreeMB: 400, PSUsedMB: 300,
			LastAttempt: time.Now().UTC(), LastStatus: status, VolumeRequiredMB: 300, AttemptsDone: 1, MaxAttempts: 3,
			LastStatusFlags: []string{"lies"}}
		if progress {
			ev.Progress = &api.RelocationProgress{BytesDone: 10, BytesTotal: 100, PackagesDone: 1, PackagesTotal: 10}
		}
		data, _ := json.Marshal(ev)
		return string(data)
	}
	post := func(body string) {
		t.Helper()
		if code, resp := f.agentDo("POST", "/agent/ps-a/events", body, cred); code != 204 {
			t.Fatalf("post event: %d %s", code, resp)
		}
	}
	post(event(0x004, true))  // in progress: latest only
	post(event(0x002, false)) // warning: some not moved
	post(event(0x401, false)) // manual success

	var srv api.Server
	_, body := f.do("GET", "/servers/ps-a", nil)
	json.Unmarshal([]byte(body), &srv)
	ls := srv.LocationStatus
	if ls == nil || ls.LastStatus != 0x401 || fmt.Sprint(ls.LastStatusFlags) != "[success manual]" || ls.VolumeFreeMB != 400 {
		t.Fatalf("latest location status: %+v", ls)
	}
	var h api.LocationHistory
	_, body = f.do("GET", "/servers/ps-a/location-history", nil)
	json.Unmarshal([]byte(body), &h)
	if len(h.Events) != 2 || h.Events[0].LastStatus != 0x401 || h.Events[1].LastStatus != 0x002 {
		t.Fatalf("history: %+v, want the two ended attempts, newest first", h.Events)
	}
	var alerts api.AlertList
	_, body = f.do("GET", "/alerts?unread=true", nil)
	json.Unmarshal([]byte(body), &alerts)
	if len(alerts.Alerts) != 2 || alerts.Alerts[0].Level != "info" || alerts.Alerts[1].Level != "warning" ||
		!strings.Contains(alerts.Alerts[1].Message, "Some of the files have not been moved to the new location") {
		t.Fatalf("alerts: %+v", alerts.Alerts)
	}
	if code, _ := f.do("POST", "/alerts/"+alerts.Alerts[0].ID+"/read", nil); code != 204 {
		t.Fatalf("mark read: %d", code)
	}
	_, body = f.do("GET", "/alerts?unread=true", nil)
	json.Unmarshal([]byte(body), &alerts)
	if len(alerts.Alerts) != 1 {
		t.Fatalf("unread alerts after marking one: %d", len(alerts.Alerts))
	}

	for _, bad := range []string{
		strings.Replace(event(0x001, false), `"last_status":1`, `"last_status":4096`, 1),
		strings.Replace(event(0x001, false), `"volume_free_mb":400`, `"volume_free_mb":-1`, 1),
		`{"storage_path":"/x"}`,
		`{"storage_path":"/x","last_attempt":"2026-01-01T00:00:00Z","surprise":1}`,
	} {
		if code, resp := f.agentDo("POST", "/agent/ps-a/events", bad, cred); code != 400 {
			t.Errorf("bad event %s: %d %s, want 400", bad, code, resp)
		}
	}
	_, body = f.do("GET", "/servers/ps-a/location-history", nil)
	json.Unmarshal([]byte(body), &h)
	if len(h.Events) != 2 {
		t.Fatalf("refused events reached the history: %d events", len(h.Events))
	}
}

func TestServerTasks(t *testing.T) {
	f := newFixture(t)
	credA := f.enroll("ps-a", "linux")
	credB := f.enroll("ps-b", "windows")
	_, etag := f.agentConfig("ps-a", credA)

	woke := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", f.url+api.Prefix+"/agent/ps-a/config?wait=30", nil)
		req.Header.Set("Authorization", "Bearer "+credA)
		req.Header.Set("If-None-Match", etag)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			woke <- -1
			return
		}
		resp.Body.Close()
		woke <- resp.StatusCode
	}()
	f.waitPolls(1)
	code, body := f.do("POST", "/servers/ps-a/tasks", strings.NewReader(`{"type":"check-location","path":"/srv/new"}`))
	if code != 201 {
		t.Fatalf("create task: %d %s", code, body)
	}
	var task api.Task
	json.Unmarshal([]byte(body), &task)
	select {
	case c := <-woke:
		if c != 200 {
			t.Fatalf("long poll after a task: %d", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a new task did not wake the server's long poll")
	}
	cfg, _ := f.agentConfig("ps-a", credA)
	if len(cfg.Tasks) != 1 || cfg.Tasks[0].ID != task.ID || cfg.Tasks[0].Path != "/srv/new" {
		t.Fatalf("config tasks: %+v", cfg.Tasks)
	}
	result := `{"plan":{"path":"/srv/new","status":32,"status_flags":["insufficient-space"],"prerequisites":[],"needed_mb":10,"free_mb":5,"longest_path":40,"path_limit":4095,"rename_packages":0,"copy_packages":2,"copy_bytes":100,"estimate_seconds":1}}`
	if code, resp := f.agentDo("POST", "/agent/ps-a/tasks/"+task.ID+"/result", result, credB); code != 403 {
		t.Fatalf("ps-b answering ps-a's task: %d %s, want 403", code, resp)
	}
	if code, resp := f.agentDo("POST", "/agent/ps-b/tasks/"+task.ID+"/result", result, credB); code != 404 {
		t.Fatalf("ps-b answering a task that is not its own: %d %s, want 404", code, resp)
	}
	if code, resp := f.agentDo("POST", "/agent/ps-a/tasks/"+task.ID+"/result", result, credA); code != 204 {
		t.Fatalf("answer: %d %s", code, resp)
	}
	if code, _ := f.agentDo("POST", "/agent/ps-a/tasks/"+task.ID+"/result", result, credA); code != 404 {
		t.Fatalf("second answer: %d, want 404", code)
	}
	_, body = f.do("GET", "/servers/ps-a/tasks/"+task.ID, nil)
	json.Unmarshal([]byte(body), &task)
	if task.DoneAt.IsZero() || task.Plan == nil || task.Plan.NeededMB != 10 {
		t.Fatalf("task after answer: %+v", task)
	}
	if cfg, _ := f.agentConfig("ps-a", credA); len(cfg.Tasks) != 0 {
		t.Fatalf("answered task still in config: %+v", cfg.Tasks)
	}

	for _, c := range []struct{ server, body string }{
		{"ps-a", `{"type":"format-disk"}`},
		{"ps-a", `{"type":"check-location","path":"relative"}`},
		{"ps-b", `{"type":"check-location","path":"/srv/linux-path-on-windows"}`},
		{"ps-a", `{"type":"retry-relocation","path":"/x"}`},
	} {
		if code, resp := f.do("POST", "/servers/"+c.server+"/tasks", strings.NewReader(c.body)); code != 400 {
			t.Errorf("task %s on %s: %d %s, want 400", c.body, c.server, code, resp)
		}
	}
	if code, _ := f.do("POST", "/servers/ghost/tasks", strings.NewReader(`{"type":"retry-relocation"}`)); code != 404 {
		t.Errorf("task for an unknown server: %d, want 404", code)
	}
}
