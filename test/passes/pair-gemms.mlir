// RUN: dsv3-opt %s --split-input-file --dsv3-pair-gemms | FileCheck %s

// Two fp8_gemm of the same quantized rows (q_a and kv_a) become one
// fp8_gemm_pair in the first one's place; a weight reference only the second
// reads moves before it, and each product's readers read its result.
dsv3.weight @qa : tensor<1536x7168xf8E4M3FN> scale <128x128, "qa_s" : 12x56>
dsv3.weight @kva : tensor<576x7168xf8E4M3FN> scale <128x128, "kva_s" : 5x56>
dsv3.weight @n : tensor<1536xbf16>
func.func @f(%x: tensor<?x7168xf8E4M3FN>, %xs: tensor<?x56xf32>) -> (tensor<?x1536xbf16>, tensor<?x576xf32>) {
  %qa:2 = dsv3.weight_ref @qa : tensor<1536x7168xf8E4M3FN>, tensor<12x56xf32>
  %q = dsv3.fp8_gemm %x scales %xs, %qa#0 scales %qa#1 block [128, 128] : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<1536x7168xf8E4M3FN>, tensor<12x56xf32>) -> tensor<?x1536xf32>
  %nw = dsv3.weight_ref @n : tensor<1536xbf16>
  %qn = dsv3.normalize %q, %nw eps 1.0e-6 : tensor<?x1536xf32>, tensor<1536xbf16> -> tensor<?x1536xbf16>
  %kva:2 = dsv3.weight_ref @kva : tensor<576x7168xf8E4M3FN>, tensor<5x56xf32>
  %kv = dsv3.fp8_gemm %x scales %xs, %kva#0 scales %kva#1 block [128, 128] : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<576x7168xf8E4M3FN>, tensor<5x56xf32>) -> tensor<?x576xf32>
  return %qn, %kv : tensor<?x1536xbf16>, tensor<?x576xf32>
}
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<?x7168xf8E4M3FN>, %[[XS:[a-z0-9]+]]: tensor<?x56xf32>)
// CHECK-NEXT: %[[QA:.*]]:2 = dsv3.weight_ref @qa
// CHECK-NEXT: %[[KVA:.*]]:2 = dsv3.weight_ref @kva
// CHECK-NEXT: %[[Q:.*]], %[[KV:.*]] = dsv3.fp8_gemm_pair %[[X]] scales %[[XS]], %[[QA]]#0 scales %[[QA]]#1, %[[KVA]]#0 scales %[[KVA]]#1 block [128, 128]
// CHECK-SAME: -> (tensor<?x1536xf32>, tensor<?x576xf32>)
// CHECK-NEXT: dsv3.weight_ref @n
// CHECK-NEXT: %[[QN:.*]] = dsv3.normalize %[[Q]],
// CHECK-NEXT: return %[[QN]], %[[KV]]
// CHECK-NOT: dsv3.fp8_gemm %

// -----

// Products of different rows, of bf16 activations, with different result
// types or with different step guards stay apart; of three products of one
// input, the first two pair (however far apart) and the third stays.
dsv3.weight @a : tensor<256x256xf8E4M3FN> scale <128x128, "a_s" : 2x2>
func.func @f(%x: tensor<?x256xf8E4M3FN>, %xs: tensor<?x2xf32>, %y: tensor<?x256xf8E4M3FN>, %ys: tensor<?x2xf32>, %z: tensor<?x256xbf16>) -> (tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x256xbf16>, tensor<?x256xbf16>, tensor<?x256xbf16>, tensor<?x256xf32>, tensor<?x256xf32>) {
  %w:2 = dsv3.weight_ref @a : tensor<256x256xf8E4M3FN>, tensor<2x2xf32>
  %0 = dsv3.fp8_gemm %x scales %xs, %w#0 scales %w#1 block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xf32>
  %1 = dsv3.fp8_gemm %y scales %ys, %w#0 scales %w#1 block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xf32>
  %2 = dsv3.fp8_gemm %z, %w#0 scales %w#1 block [128, 128] : (tensor<?x256xbf16>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xf32>
  %3 = dsv3.fp8_gemm %z, %w#0 scales %w#1 block [128, 128] : (tensor<?x256xbf16>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xf32>
  %4 = dsv3.fp8_gemm %y scales %ys, %w#0 scales %w#1 block [128, 128] {dsv3.when = "fresh"} : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xbf16>
  %5 = dsv3.fp8_gemm %y scales %ys, %w#0 scales %w#1 block [128, 128] {dsv3.when = "resumed"} : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xbf16>
  %6 = dsv3.fp8_gemm %y scales %ys, %w#0 scales %w#1 block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xbf16>
  %7 = dsv3.fp8_gemm %x scales %xs, %w#0 scales %w#1 block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xf32>
  %8 = dsv3.fp8_gemm %x scales %xs, %w#0 scales %w#1 block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) -> tensor<?x256xf32>
  return %0, %1, %2, %3, %4, %5, %6, %7, %8 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x256xbf16>, tensor<?x256xbf16>, tensor<?x256xbf16>, tensor<?x256xf32>, tensor<?x256xf32>
}
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<?x256xf8E4M3FN>, %[[XS:[a-z0-9]+]]: tensor<?x2xf32>, %[[Y:[a-z0-9]+]]: tensor<?x256xf8E4M3FN>
// CHECK: %[[P0:.*]], %[[P1:.*]] = dsv3.fp8_gemm_pair %[[X]] scales %[[XS]],
// CHECK-NEXT: %[[B:.*]] = dsv3.fp8_gemm %[[Y]] {{.*}} -> tensor<?x256xf32>
// CHECK-NEXT: dsv3.fp8_gemm %{{[a-z0-9]+}}, {{.*}} -> tensor<?x256xf32>
// CHECK-NEXT: dsv3.fp8_gemm %{{[a-z0-9]+}}, {{.*}} -> tensor<?x256xf32>
// CHECK-NEXT: %[[F:.*]] = dsv3.fp8_gemm %[[Y]] {{.*}} {dsv3.when = "fresh"}
// CHECK-NEXT: %[[R:.*]] = dsv3.fp8_gemm %[[Y]] {{.*}} {dsv3.when = "resumed"}
// CHECK-NEXT: %[[N:.*]] = dsv3.fp8_gemm %[[Y]] {{.*}} -> tensor<?x256xbf16>
// CHECK-NEXT: %[[THIRD:.*]] = dsv3.fp8_gemm %[[X]] {{.*}} -> tensor<?x256xf32>
// CHECK-NEXT: return %[[P0]], %[[B]], %{{.*}}, %{{.*}}, %[[F]], %[[R]], %[[N]], %[[P1]], %[[THIRD]] :

// -----

// The routed experts' gate and up: grouped_gemm of the same rows, gather and
// offsets become one grouped_gemm_pair; down (other rows) stays.
func.func @f(%x: tensor<?x256xf8E4M3FN>, %xs: tensor<?x2xf32>, %tok: tensor<?xi32>, %o: tensor<5xi32>, %g: tensor<4x128x256xf8E4M3FN>, %gs: tensor<4x1x2xf32>, %u: tensor<4x128x256xf8E4M3FN>, %us: tensor<4x1x2xf32>, %p: tensor<?x256xf8E4M3FN>, %ps: tensor<?x2xf32>, %d: tensor<4x256x256xf8E4M3FN>, %ds: tensor<4x2x2xf32>) -> (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x256xf32>) {
  %0 = dsv3.grouped_gemm %x scales %xs gather %tok, %g scales %gs offsets %o block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<?xi32>, tensor<4x128x256xf8E4M3FN>, tensor<4x1x2xf32>, tensor<5xi32>) -> tensor<?x128xf32>
  %1 = dsv3.grouped_gemm %x scales %xs gather %tok, %u scales %us offsets %o block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<?xi32>, tensor<4x128x256xf8E4M3FN>, tensor<4x1x2xf32>, tensor<5xi32>) -> tensor<?x128xf32>
  %2 = dsv3.grouped_gemm %p scales %ps, %d scales %ds offsets %o block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<4x256x256xf8E4M3FN>, tensor<4x2x2xf32>, tensor<5xi32>) -> tensor<?x256xf32>
  return %0, %1, %2 : tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x256xf32>
}
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<?x256xf8E4M3FN>, %[[XS:[a-z0-9]+]]: tensor<?x2xf32>, %[[TOK:[a-z0-9]+]]: tensor<?xi32>, %[[O:[a-z0-9]+]]: tensor<5xi32>, %[[G:[a-z0-9]+]]: tensor<4x128x256xf8E4M3FN>, %[[GS:[a-z0-9]+]]: tensor<4x1x2xf32>, %[[U:[a-z0-9]+]]: tensor<4x128x256xf8E4M3FN>, %[[US:[a-z0-9]+]]: tensor<4x1x2xf32>
// CHECK-NEXT: %[[GO:.*]], %[[UO:.*]] = dsv3.grouped_gemm_pair %[[X]] scales %[[XS]] gather %[[TOK]], %[[G]] scales %[[GS]], %[[U]] scales %[[US]] offsets %[[O]] block [128, 128]
// CHECK-NEXT: %[[D:.*]] = dsv3.grouped_gemm
// CHECK-NEXT: return %[[GO]], %[[UO]], %[[D]]
