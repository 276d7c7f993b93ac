"""VLANs across two hypervisors over a VXLAN tunnel: gre.py with another tunnel type
(see there for the diagram and the underlay's warm-up)."""
from topologies.nets.gre import tunnelled

TOPOLOGY = tunnelled('vxlan')
