package harness

import "testing"

func TestStartRedis(t *testing.T) {
	t.Parallel()
	addr := StartRedis(t)
	if err := pingRedis(addr); err != nil {
		t.Fatal(err)
	}
}
