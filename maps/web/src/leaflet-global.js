// leaflet-geoman is a classic script that extends the global `L`: Leaflet must be global before it runs.
import L from "leaflet";

window.L = L;
export default L;
