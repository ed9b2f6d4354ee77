package httpapi

import (
	"fmt"
	"net/http"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

func unknownKind(kind string) error {
	return fmt.Errorf("policy kind %q (want %s or %s): %w", kind, api.PolicyPackageServer, api.PolicySiteServer, wharf.ErrNotFound)
}

// getPolicy answers the global policy, or a server's override when the
// route names a server.
func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	server := r.PathValue("name")
	var (
		v   any
		err error
	)
	switch kind := r.PathValue("kind"); kind {
	case api.PolicyPackageServer:
		v, err = s.cat.PackageServerPolicy(r.Context(), server)
	case api.PolicySiteServer:
		v, err = s.cat.SiteServerPolicy(r.Context(), server)
	default:
		return unknownKind(kind)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// putPolicy changes the fields the body sets and leaves the others.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	server := r.PathValue("name")
	var (
		v   any
		err error
	)
	switch kind := r.PathValue("kind"); kind {
	case api.PolicyPackageServer:
		var in api.PackageServerSettings
		if err := decode(w, r, MaxSmallBody, &in); err != nil {
			return err
		}
		v, err = s.cat.SetPackageServerPolicy(r.Context(), server, in)
	case api.PolicySiteServer:
		var in api.SiteServerSettings
		if err := decode(w, r, MaxSmallBody, &in); err != nil {
			return err
		}
		v, err = s.cat.SetSiteServerPolicy(r.Context(), server, in)
	default:
		return unknownKind(kind)
	}
	if err != nil {
		return err
	}
	s.log.Info("policy changed", "kind", r.PathValue("kind"), "server", server)
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	if err := s.cat.ResetPolicy(r.Context(), r.PathValue("name"), r.PathValue("kind")); err != nil {
		return err
	}
	s.log.Info("policy override removed", "kind", r.PathValue("kind"), "server", r.PathValue("name"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) effectivePolicy(w http.ResponseWriter, r *http.Request) error {
	e, err := s.cat.EffectivePolicy(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}
