package sqlparse

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Inspect calls visit for every message in the tree, depth first, like
// go/ast.Inspect: when visit returns false the children of that message
// are skipped and the walk goes on with its siblings. (Walk, in contrast,
// stops altogether.)
func Inspect(m proto.Message, visit func(proto.Message) bool) {
	if m == nil {
		return
	}
	inspect(m.ProtoReflect(), visit)
}

func inspect(m protoreflect.Message, visit func(proto.Message) bool) {
	if !m.IsValid() || !visit(m.Interface()) {
		return
	}
	eachChild(m, func(c protoreflect.Message) { inspect(c, visit) })
}

// eachChild calls fn for every message-valued field and list element of m.
func eachChild(m protoreflect.Message, fn func(protoreflect.Message)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				fn(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			fn(v.Message())
		}
		return true
	})
}
