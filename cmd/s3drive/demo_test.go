package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDemoRefusesExpiredLinks(t *testing.T) {
	h := refuseExpiredLinks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	signed := time.Now().Add(-10 * time.Second).UTC().Format("20060102T150405Z")
	for url, want := range map[string]int{
		"/demo/f.txt": http.StatusTeapot, // not a link
		"/demo/f.txt?X-Amz-Date=" + signed + "&X-Amz-Expires=60": http.StatusTeapot,
		"/demo/f.txt?X-Amz-Date=" + signed + "&X-Amz-Expires=5":  http.StatusForbidden,
		"/demo/f.txt?X-Amz-Date=yesterday&X-Amz-Expires=5":       http.StatusForbidden,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", url, rec.Code, want)
		}
	}
}
