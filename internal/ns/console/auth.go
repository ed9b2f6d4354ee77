package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/wharf-project/wharf/internal/wharf"
)

// adminUser is the user name of a session opened with the admin token.
const adminUser = "admin"

// loginForm is the login page's data.
type loginForm struct {
	CSRF  string
	Next  string
	User  string
	Error string
}

// loginCookieAge is how long the login form stays usable, in seconds.
const loginCookieAge = 3600

// loginPage shows the login form; a visitor with a session goes on.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if c.session(r) != nil {
		redirect(w, r, next)
		return
	}
	c.showLogin(w, r, http.StatusOK, loginForm{Next: next})
}

// showLogin renders the login form with a fresh login CSRF token, kept in
// a cookie to compare with the form's field.
func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, code int, f loginForm) {
	f.CSRF = randomToken()
	c.setCookie(w, r, loginCookie, f.CSRF, loginCookieAge)
	c.render(w, r, nil, code, "login", view{Title: "Log in", Page: f})
}

// login checks the admin token, or a user's name and password, and opens a
// session. Each attempt spends from the client's budget.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	ok, wait, err := c.limiter.allow(r)
	if err != nil {
		code, msg := c.status(r, err)
		c.showLogin(w, r, code, loginForm{Next: "/", Error: msg})
		return
	}
	if !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())))
		c.log.Warn("console login refused: too many attempts", "remote", r.RemoteAddr)
		c.showLogin(w, r, http.StatusTooManyRequests, loginForm{Next: "/",
			Error: fmt.Sprintf("Too many login attempts from your address; wait %s and try again.", wait)})
		return
	}
	ck, _ := r.Cookie(loginCookie)
	want := ""
	if ck != nil {
		want = ck.Value
	}
	if err := c.checkForm(w, r, want); err != nil {
		code, msg := c.status(r, err)
		if code == http.StatusForbidden && want == "" {
			msg = "your browser sent no login cookie: allow cookies for this site, reload the page and try again"
		}
		c.showLogin(w, r, code, loginForm{Next: "/", Error: msg})
		return
	}
	f := loginForm{Next: safeNext(r.PostForm.Get("next")), User: strings.TrimSpace(r.PostForm.Get("user"))}
	secret := r.PostForm.Get("secret")
	var (
		user, pwHash string
		byToken      bool
	)
	if f.User == "" {
		err, user, byToken = c.cat.CheckAdminToken(r.Context(), strings.TrimSpace(secret)), adminUser, true
	} else {
		u, e := c.users.CheckUserPassword(r.Context(), f.User, secret)
		err, user, pwHash = e, u.Name, u.PasswordHash
	}
	if err != nil {
		if !errors.Is(err, wharf.ErrUnauthorized) {
			code, msg := c.status(r, err)
			c.showLogin(w, r, code, loginForm{Next: f.Next, User: f.User, Error: msg})
			return
		}
		c.log.Info("console login failed", "user", f.User, "remote", r.RemoteAddr)
		f.Error = "Wrong admin token."
		if !byToken {
			f.Error = "Wrong user name or password."
		}
		c.showLogin(w, r, http.StatusUnauthorized, f)
		return
	}
	id, err := c.sessions.create(r.Context(), user, byToken, pwHash)
	if err != nil {
		code, msg := c.status(r, err)
		c.showLogin(w, r, code, loginForm{Next: f.Next, User: f.User, Error: msg})
		return
	}
	c.setCookie(w, r, sessionCookie, id, 0)
	c.setCookie(w, r, loginCookie, "", -1)
	c.log.Info("console login", "user", user, "admin_token", byToken, "remote", r.RemoteAddr)
	redirect(w, r, f.Next)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, sess *session) error {
	if err := c.sessions.delete(r.Context(), sess); err != nil {
		return err
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	c.log.Info("console logout", "user", sess.user)
	redirect(w, r, "/login")
	return nil
}
