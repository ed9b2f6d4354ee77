package httpapi

import (
	"net/http"
	"strconv"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

func (s *Server) agentEvent(w http.ResponseWriter, r *http.Request, ps catalog.Server) error {
	var ev api.LocationStatus
	if err := decode(w, r, MaxManifestBytes, &ev); err != nil {
		return err
	}
	if err := s.cat.ReportLocation(r.Context(), ps, ev); err != nil {
		return err
	}
	if ev.Progress == nil {
		s.log.Info("package location status", "server", ps.Name, "path", ev.StoragePath, "status", ev.LastStatus)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) agentHealth(w http.ResponseWriter, r *http.Request, ps catalog.Server) error {
	var rep api.HealthReport
	if err := decode(w, r, MaxManifestBytes, &rep); err != nil {
		return err
	}
	if _, err := s.cat.ReportHealth(r.Context(), ps, rep); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) agentTaskResult(w http.ResponseWriter, r *http.Request, ps catalog.Server) error {
	var res api.TaskResult
	if err := decode(w, r, MaxSmallBody, &res); err != nil {
		return err
	}
	if err := s.cat.CompleteTask(r.Context(), ps, r.PathValue("id"), res); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) locationHistory(w http.ResponseWriter, r *http.Request) error {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return wharf.Errorf(wharf.ErrInvalid, "limit %q: want a positive whole number", v)
		}
		limit = n
	}
	h, err := s.cat.LocationHistory(r.Context(), r.PathValue("name"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	var req api.TaskRequest
	if err := decode(w, r, MaxSmallBody, &req); err != nil {
		return err
	}
	t, err := s.cat.CreateTask(r.Context(), r.PathValue("name"), req)
	if err != nil {
		return err
	}
	s.log.Info("server task created", "server", t.Server, "task", t.ID, "type", t.Type)
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	t, err := s.cat.TaskStatus(r.Context(), r.PathValue("name"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cat.Alerts(r.Context(), r.URL.Query().Get("unread") == "true")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) markAlertRead(w http.ResponseWriter, r *http.Request) error {
	if err := s.cat.MarkAlertRead(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) markAllAlertsRead(w http.ResponseWriter, r *http.Request) error {
	n, err := s.cat.MarkAllAlertsRead(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.AlertsRead{Marked: n})
	return nil
}
