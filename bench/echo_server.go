// A grpc-go Echo server for bench/loadtest.py (SayHello only, plaintext on
// 127.0.0.1): requests and replies as raw protobuf bytes, so no generated code
// is needed. Native and multi-threaded, it costs the load less CPU per request
// than the clients measured, so they are what the benchmark measures.
// Build (Debian's golang-go and golang-google-grpc-dev, offline):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o echo-go bench/echo_server.go
package main

import (
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// name returns field 1 (a string) of an EchoRequest.
func name(req []byte) []byte {
	for i := 0; i < len(req); {
		tag := req[i]
		i++
		if tag == 0x0a {
			n, shift := 0, 0
			for i < len(req) {
				b := req[i]
				i++
				n |= int(b&0x7f) << shift
				if b < 0x80 {
					break
				}
				shift += 7
			}
			if i+n <= len(req) {
				return req[i : i+n]
			}
			return nil
		}
		// skip a varint field (count, fail_code, fail_after)
		for i < len(req) && req[i] >= 0x80 {
			i++
		}
		i++
	}
	return nil
}

func handler(srv interface{}, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	if method != "/echo.EchoServer/SayHello" {
		return fmt.Errorf("unimplemented %s", method)
	}
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	msg := append(append([]byte("Hello "), name(req)...), []byte(" from K_REVISION local")...)
	reply := []byte{0x0a}
	for n := len(msg); ; n >>= 7 { // the length as a varint
		if n < 0x80 {
			reply = append(reply, byte(n))
			break
		}
		reply = append(reply, byte(n&0x7f|0x80))
	}
	reply = append(reply, msg...)
	return stream.SendMsg(&reply)
}

func main() {
	encoding.RegisterCodec(rawCodec{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(lis.Addr().(*net.TCPAddr).Port)
	s := grpc.NewServer(grpc.UnknownServiceHandler(handler))
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
