
/// What a cell needs from the ranks that train it together (a data-parallel group): who it is, and
/// the collectives of one step. MPI's `Communicator` conforms in the distributed target; training
/// never sees MPI.
public protocol Collective: AnyObject {
  var rank: Int { get }
  var size: Int { get }
  /// Sums `count` floats over the group, in place (one fused call per step: the gradient slab).
  func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int)
  /// The sum of one value over the group.
  func allreduceSum(_ x: Double) -> Double
  /// Every rank gets `root`'s bytes (the others' are replaced, whatever their length).
  func broadcast(bytes: inout [UInt8], root: Int)
}
