package conf_test

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/recording-storage/recording-storage/conf"
)

const instanceJSON = `{
  "storage": "dracoon",
  "dracoon": {
    "baseUrl": "https://dracoon.example.com",
    "login": "svc", "password": "p", "encryptionPassword": "e",
    "clientId": "c", "clientSecret": "s", "parentRoomId": 42,
    "targets": [
      {"meetingTypeId": 14, "copyTo": [{"path": "some room/sub-room", "expiration": "4 years 3 months 2 weeks 1 day"}]},
      {"meetingTypeId": "any", "copyTo": [{"path": "$instance/$meetingType"}]},
      {"meetingTypeId": "15", "copyTo": [{"path": "fifteen", "expiration": null}]}
    ]
  }
}`

func TestInstance_decode_json_and_targets(t *testing.T) {
	t.Parallel()
	var in conf.Instance
	if err := json.Unmarshal([]byte(instanceJSON), &in); err != nil {
		t.Fatal(err)
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	id14, id15, id99 := int64(14), int64(15), int64(99)
	tests := []struct {
		name  string
		id    *int64
		paths []string
	}{
		{name: "type_14", id: &id14, paths: []string{"some room/sub-room", "$instance/$meetingType"}},
		{name: "type_15_id_in_string", id: &id15, paths: []string{"$instance/$meetingType", "fifteen"}},
		{name: "other_type_gets_any", id: &id99, paths: []string{"$instance/$meetingType"}},
		{name: "unknown_type_gets_any", id: nil, paths: []string{"$instance/$meetingType"}},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range in.Dracoon.Targets.TargetsFor(tt.id) {
			got = append(got, s.Path)
		}
		if strings.Join(got, ",") != strings.Join(tt.paths, ",") {
			t.Errorf("%s: TargetsFor = %q, want %q", tt.name, got, tt.paths)
		}
	}
}

func TestInstance_targets_as_json_string(t *testing.T) {
	t.Parallel()
	doc := `{"storage":"dracoon","dracoon":{"targets":"[{\"meetingTypeId\":\"any\",\"copyTo\":[{\"path\":\"a/b\"}]}]"}}`
	var in conf.Instance
	if err := json.Unmarshal([]byte(doc), &in); err != nil {
		t.Fatal(err)
	}
	if len(in.Dracoon.Targets) != 1 || !in.Dracoon.Targets[0].MeetingTypeID.Any {
		t.Errorf("targets = %+v", in.Dracoon.Targets)
	}
	y := "storage: dracoon\ndracoon:\n  targets: '[{\"meetingTypeId\": 3, \"copyTo\": [{\"path\": \"x\"}]}]'\n"
	var iy conf.Instance
	if err := yaml.Unmarshal([]byte(y), &iy); err != nil {
		t.Fatal(err)
	}
	if len(iy.Dracoon.Targets) != 1 || iy.Dracoon.Targets[0].MeetingTypeID.ID != 3 {
		t.Errorf("yaml targets = %+v", iy.Dracoon.Targets)
	}
}

func TestInstance_rejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*conf.Instance)
		want   string
	}{
		{name: "storage", change: func(i *conf.Instance) { i.Storage = "s3" }, want: `storage must be "dracoon", got "s3"`},
		{name: "http_url", change: func(i *conf.Instance) { i.Dracoon.BaseURL = "http://dracoon.example.com" }, want: "dracoon.baseUrl must be an https URL"},
		{name: "login", change: func(i *conf.Instance) { i.Dracoon.Login = "" }, want: "dracoon.login must be set"},
		{name: "password", change: func(i *conf.Instance) { i.Dracoon.Password = "" }, want: "dracoon.password must be set"},
		{name: "encryption_password", change: func(i *conf.Instance) { i.Dracoon.EncryptionPassword = "" }, want: "dracoon.encryptionPassword must be set"},
		{name: "client_secret", change: func(i *conf.Instance) { i.Dracoon.ClientSecret = "" }, want: "dracoon.clientSecret must be set"},
		{name: "parent_room", change: func(i *conf.Instance) { i.Dracoon.ParentRoomID = 0 }, want: "dracoon.parentRoomId must be a positive room id, got 0"},
		{name: "bad_expiration", change: func(i *conf.Instance) {
			e := "1 hour"
			i.Dracoon.Targets[0].CopyTo[0].Expiration = &e
		}, want: `dracoon.targets[0].copyTo[0].expiration: unknown unit "hour"`},
		{name: "bad_path", change: func(i *conf.Instance) { i.Dracoon.Targets[1].CopyTo[0].Path = "a/../b" }, want: `dracoon.targets[1].copyTo[0].path: segment 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in conf.Instance
			if err := json.Unmarshal([]byte(instanceJSON), &in); err != nil {
				t.Fatal(err)
			}
			tt.change(&in)
			err := in.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	var m conf.MeetingTypeID
	for _, bad := range []string{`"sometimes"`, `0`, `-3`, `1.5`} {
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Errorf("meetingTypeId %s accepted", bad)
		}
	}
}
