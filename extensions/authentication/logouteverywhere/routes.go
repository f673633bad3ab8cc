package logouteverywhere

import (
	"context"
	"net/http"

	"github.com/kiln-go/kiln/web/authroute"
)

// Activity is the activity of the add-on's route, for web's
// AuthController.
const Activity authroute.Activity = "log_out_everywhere"

var _ authroute.Provider = LogOutEverywhere{}

// Routes implements authroute.Provider: the add-on as built serves
//
//	POST /auth/<subject>/log_out_everywhere
//
// which runs the action for the signed-in user, then signs the request
// out. It fails closed: when the revocation fails, the session stays
// signed in and the route answers 503 (see authroute.Router.SignOut). The
// add-on as declared serves nothing.
func (l LogOutEverywhere) Routes(rt authroute.Router) {
	if l.action == nil {
		return
	}
	rt.Handle(http.MethodPost, l.AddOnName(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := rt.User(r)
		if err != nil {
			rt.Answer(w, r, Activity, nil, err)
			return
		}
		rt.SignOut(w, r, Activity, func(ctx context.Context) error {
			_, err := l.Run(ctx, rt.Auth().Domain(), user)
			return err
		})
	}))
}
