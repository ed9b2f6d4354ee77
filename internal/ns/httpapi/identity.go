package httpapi

import (
	"net/http"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
)

// ---- client tokens, the admin token, and the lifecycle of servers

func (s *Server) createClientToken(w http.ResponseWriter, r *http.Request) error {
	var req api.ClientTokenRequest
	if err := decode(w, r, MaxSmallBody, &req); err != nil {
		return err
	}
	t, err := s.cat.CreateClientToken(r.Context(), req.Name)
	if err != nil {
		return err
	}
	s.log.Info("client token created", "client", t.Name)
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) listClientTokens(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cat.ListClientTokens(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) revokeClientToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.cat.RevokeClientToken(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	s.log.Info("client token revoked", "client", r.PathValue("name"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotateAdminToken replaces the admin token; the answer carries the new
// one, and the NS that answers rewrites its admin.token file
// (Options.AdminTokenRotated).
func (s *Server) rotateAdminToken(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength != 0 {
		var empty struct{}
		if err := decode(w, r, MaxSmallBody, &empty); err != nil {
			return err
		}
	}
	tok, err := s.cat.RotateAdminToken(r.Context())
	if err != nil {
		return err
	}
	s.log.Warn("admin token replaced; the old one no longer works")
	if s.opts.AdminTokenRotated != nil {
		if err := s.opts.AdminTokenRotated(tok); err != nil {
			// The token is replaced: the caller must learn it anyway.
			s.log.Error("write the new admin token to its file", "err", err)
		}
	}
	writeJSON(w, http.StatusCreated, api.AdminToken{Token: tok})
	return nil
}

func (s *Server) removeServer(w http.ResponseWriter, r *http.Request) error {
	if err := s.cat.RemoveServer(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	s.log.Warn("package server removed; its credential no longer works", "server", r.PathValue("name"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateCredential(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength != 0 {
		var empty struct{}
		if err := decode(w, r, MaxSmallBody, &empty); err != nil {
			return err
		}
	}
	t, err := s.cat.RequestCredentialRotation(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	s.log.Info("credential rotation requested", "server", t.Server, "task", t.ID)
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) agentCredential(w http.ResponseWriter, r *http.Request, ps catalog.Server) error {
	var req api.CredentialRotation
	if err := decode(w, r, MaxSmallBody, &req); err != nil {
		return err
	}
	if err := s.cat.RotateServerCredential(r.Context(), ps, req); err != nil {
		return err
	}
	s.log.Info("package server credential replaced", "server", ps.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
