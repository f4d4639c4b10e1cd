package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"

	"contracts.example/mensagem"
)

// maxDecodeBytes bounds the pixels one image may decode into: decoding
// allocates width x height x channels whatever the file size, so a
// 100-byte header can ask for gigabytes. Above it an image is described
// without dimensions instead of decoded.
const maxDecodeBytes = 512 << 20

// imagemService is mensagem.ImagemService (seed 000): one description per
// image, sent as soon as that image is processed.
type imagemService struct {
	mensagem.UnimplementedImagemServiceServer
}

func (imagemService) UploadImagem(stream mensagem.ImagemService_UploadImagemServer) error {
	for index := uint64(0); ; index++ {
		request, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(describe(request.GetImagem(), index)); err != nil {
			return err
		}
	}
}

// A container format the contract names, told by its signature bytes.
type format struct {
	value  mensagem.ImageFormat
	name   string
	decode func(io.Reader) (image.Image, error)
	config func(io.Reader) (image.Config, error)
}

// decodeGIF reads every frame up to the trailer: the contract wants the
// whole file to decode, and gif.Decode stops after the first frame.
func decodeGIF(r io.Reader) (image.Image, error) {
	all, err := gif.DecodeAll(r)
	if err != nil {
		return nil, err
	}
	return all.Image[0], nil
}

// detectFormat judges by the leading signature bytes alone, as the
// contract says; nil for anything else.
func detectFormat(data []byte) *format {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return &format{mensagem.ImageFormat_IMAGE_FORMAT_PNG, "PNG", png.Decode, png.DecodeConfig}
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return &format{mensagem.ImageFormat_IMAGE_FORMAT_JPEG, "JPEG", jpeg.Decode, jpeg.DecodeConfig}
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return &format{mensagem.ImageFormat_IMAGE_FORMAT_GIF, "GIF", decodeGIF, gif.DecodeConfig}
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return &format{mensagem.ImageFormat_IMAGE_FORMAT_WEBP, "WebP", webp.Decode, webp.DecodeConfig}
	}
	return nil
}

func describe(data []byte, index uint64) *mensagem.ImagemResposta {
	digest := sha256.Sum256(data)
	response := &mensagem.ImagemResposta{
		ByteCount: uint64(len(data)),
		Sha256Hex: hex.EncodeToString(digest[:]),
		Index:     index,
	}
	detected := detectFormat(data)
	if detected == nil {
		response.Format = mensagem.ImageFormat_IMAGE_FORMAT_UNKNOWN
		response.Mensagem = fmt.Sprintf("Received %d bytes that are not a recognised image.", len(data))
		return response
	}
	response.Format = detected.value
	width, height, ok := dimensions(data, detected)
	if !ok {
		response.Mensagem = fmt.Sprintf("Received %d bytes that look like %s but do not decode.", len(data), detected.name)
		return response
	}
	response.Width, response.Height = &width, &height
	response.Mensagem = fmt.Sprintf("Received a %dx%d %s image of %d bytes.", width, height, detected.name, len(data))
	return response
}

// dimensions decodes the whole image, and gives its size only if that
// worked: the header alone is not enough, since a truncated or corrupt file
// has a header too. Go's decoders check what the formats require (PNG
// chunk CRCs up to IEND, JPEG up to its EOI marker), and a decoder that
// panics on hostile bytes counts as a failure.
func dimensions(data []byte, detected *format) (width, height uint32, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	config, err := detected.config(bytes.NewReader(data))
	if err != nil || config.Width <= 0 || config.Height <= 0 {
		return 0, 0, false
	}
	if int64(config.Width)*int64(config.Height)*bytesPerPixel(config.ColorModel) > maxDecodeBytes {
		return 0, 0, false
	}
	decoded, err := detected.decode(bytes.NewReader(data))
	if err != nil {
		return 0, 0, false
	}
	bounds := decoded.Bounds()
	return uint32(bounds.Dx()), uint32(bounds.Dy()), true
}

// bytesPerPixel is what Go's decoders allocate a pixel in each colour model;
// 8, the widest, for any other.
func bytesPerPixel(model color.Model) int64 {
	switch model {
	case color.GrayModel:
		return 1
	case color.Gray16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel:
		return 4
	}
	if _, paletted := model.(color.Palette); paletted {
		return 1
	}
	return 8
}
