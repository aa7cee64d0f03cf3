// The one place that names the vendored D3 file, so an upgrade touches one import.
import d3 from "../vendor/d3-7.9.2.esm.min.js";

export default d3;
