"""Face inputs for the edge-to-face task (paper section 4, FaceForensics: "we ... extract a sketch
from the face using dlib landmarks connected into a sketch, and Canny edges outside the face")."""
