// Package record defines the signed envelope that carries every durable fact
// in Agora: its wire form, signing input, content ID, limits and validation.
//
// record checks what can be checked from the bytes alone (size, encoding,
// version, kind, author key, community ID shape, signature, clock). It must
// not interpret bodies, look anything up or touch storage: kind rules,
// references and supersede rights belong to the registry.
package record
