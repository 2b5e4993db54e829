package store

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkPut1k: 1000 single-object transactions per iteration.
func BenchmarkPut1k(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			ctx := context.Background()
			s := openMigrated(b, d.newDB(b))
			objs := make([][]byte, 1000)
			for i := range objs {
				objs[i] = route(fmt.Sprintf("r%04d", i), fmt.Sprintf("h%d.example", i))
			}
			b.ResetTimer()
			for b.Loop() {
				for _, o := range objs {
					if _, err := s.Put(ctx, o, ""); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkApply1k: one transaction of 1000 objects per iteration.
func BenchmarkApply1k(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			ctx := context.Background()
			s := openMigrated(b, d.newDB(b))
			ops := make([]Op, 1000)
			for i := range ops {
				ops[i] = Op{Object: route(fmt.Sprintf("r%04d", i), fmt.Sprintf("h%d.example", i))}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Apply(ctx, ops); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
